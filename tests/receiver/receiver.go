// SPDX-License-Identifier: BSD-2-Clause
//
// receiver: a stand-in for Pyroscope's distributor, for tests/test_upload.c.
// Go standard library only, so it builds offline with GO111MODULE=off.
//
// It serves POST /push.v1.PusherService/Push (decoding PushRequest from the
// protobuf wire format by hand) and POST /ingest, writes one JSON line per
// request to -log and saves each un-gzipped profile as <log>.<n>.pprof.
//
// -script "503,429,reset,200@5000,200" answers request i with token i
// (then 200): a status, "reset" (close the connection without answering)
// or STATUS@MS (answer after MS milliseconds). -delay MS delays every
// request. Errors carry Connect's JSON body, as Pyroscope sends them.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

type step struct {
	status int
	reset  bool
	delay  time.Duration
}

type server struct {
	mu     sync.Mutex
	n      int
	script []step
	delay  time.Duration
	log    *os.File
	logDir string
}

type record struct {
	N           int               `json:"n"`
	TMs         int64             `json:"t_ms"`
	Method      string            `json:"method"`
	Path        string            `json:"path"`
	Query       string            `json:"query"`
	Headers     map[string]string `json:"headers"`
	Status      int               `json:"status"`
	BodySize    int               `json:"body_size"`
	Series      int               `json:"series"`
	Samples     int               `json:"samples"`
	Labels      [][2]string       `json:"labels"`
	ProfileSize int               `json:"profile_size"`
	ProfileSHA  string            `json:"profile_sha256"`
	ClientCN    string            `json:"client_cn"`
	Error       string            `json:"error,omitempty"`
}

var selected = []string{"Content-Type", "Content-Encoding", "Accept-Encoding",
	"Connect-Protocol-Version", "Connect-Timeout-Ms", "User-Agent",
	"X-Scope-Orgid", "Authorization", "Expect"}

func parseScript(s string) ([]step, error) {
	var out []step
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if t == "reset" {
			out = append(out, step{reset: true})
			continue
		}
		var st step
		if i := strings.IndexByte(t, '@'); i >= 0 {
			ms, err := strconv.Atoi(t[i+1:])
			if err != nil {
				return nil, err
			}
			st.delay = time.Duration(ms) * time.Millisecond
			t = t[:i]
		}
		code, err := strconv.Atoi(t)
		if err != nil {
			return nil, err
		}
		st.status = code
		out = append(out, st)
	}
	return out, nil
}

// Protobuf wire format: just enough to walk length-delimited fields.
func varint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * uint(i))
		if b[i] < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("bad varint")
}

// fields calls fn for each field of msg; only varint and bytes wire types
// occur in PushRequest.
func fields(msg []byte, fn func(num int, data []byte) error) error {
	for len(msg) > 0 {
		key, n, err := varint(msg)
		if err != nil {
			return err
		}
		msg = msg[n:]
		switch key & 7 {
		case 0:
			_, n, err = varint(msg)
			if err != nil {
				return err
			}
			msg = msg[n:]
		case 2:
			l, n, err := varint(msg)
			if err != nil || uint64(len(msg)-n) < l {
				return errors.New("bad length")
			}
			if err := fn(int(key>>3), msg[n:n+int(l)]); err != nil {
				return err
			}
			msg = msg[n+int(l):]
		default:
			return fmt.Errorf("unexpected wire type %d", key&7)
		}
	}
	return nil
}

func decodePush(body []byte, rec *record) ([][]byte, error) {
	var profiles [][]byte
	err := fields(body, func(num int, series []byte) error {
		if num != 1 {
			return nil
		}
		rec.Series++
		return fields(series, func(num int, data []byte) error {
			switch num {
			case 1:
				var lp [2]string
				err := fields(data, func(num int, s []byte) error {
					if num == 1 || num == 2 {
						lp[num-1] = string(s)
					}
					return nil
				})
				rec.Labels = append(rec.Labels, lp)
				return err
			case 2:
				rec.Samples++
				return fields(data, func(num int, s []byte) error {
					if num == 1 {
						profiles = append(profiles, s)
					}
					return nil
				})
			}
			return nil
		})
	})
	return profiles, err
}

// Pyroscope accepts gzip'd or plain pprof; so does this.
func gunzip(b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return b
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return b
	}
	return out
}

var connectCodes = map[int]string{400: "invalid_argument", 401: "unauthenticated",
	403: "permission_denied", 404: "not_found", 408: "deadline_exceeded",
	413: "resource_exhausted", 422: "invalid_argument", 429: "resource_exhausted",
	500: "internal", 501: "unimplemented", 503: "unavailable", 504: "deadline_exceeded"}

func (s *server) next() (int, step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.n
	s.n++
	st := step{status: 200}
	if n < len(s.script) {
		st = s.script[n]
	}
	if st.delay == 0 {
		st.delay = s.delay
	}
	return n, st
}

func (s *server) write(rec *record, profile []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if profile != nil {
		name := fmt.Sprintf("%s.%d.pprof", s.logDir, rec.N)
		_ = os.WriteFile(name, profile, 0o644)
	}
	line, _ := json.Marshal(rec)
	_, _ = s.log.Write(append(line, '\n'))
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, st := s.next()
	rec := record{N: n, TMs: time.Now().UnixMilli(), Method: r.Method,
		Path: r.URL.Path, Query: r.URL.RawQuery, Headers: map[string]string{},
		Status: st.status, Labels: [][2]string{}}
	for _, h := range selected {
		if v := r.Header.Get(h); v != "" {
			rec.Headers[h] = v
		}
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		rec.ClientCN = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rec.Error = err.Error()
	}
	rec.BodySize = len(body)
	var profile []byte
	switch r.URL.Path {
	case "/push.v1.PusherService/Push":
		profiles, err := decodePush(body, &rec)
		if err != nil {
			rec.Error = err.Error()
		}
		if len(profiles) > 0 {
			rec.ProfileSize = len(profiles[0])
			profile = gunzip(profiles[0])
		}
	case "/ingest":
		rec.ProfileSize = len(body)
		profile = gunzip(body)
	default:
		rec.Error = "unknown path"
	}
	if profile != nil {
		sum := sha256.Sum256(profile)
		rec.ProfileSHA = hex.EncodeToString(sum[:])
	}
	if st.reset {
		rec.Status = 0
	}
	s.write(&rec, profile)
	if st.delay > 0 {
		time.Sleep(st.delay)
	}
	if st.reset {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // RST, not FIN
				}
				_ = c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if st.status == 200 {
		w.Header().Set("Content-Type", "application/proto")
		w.WriteHeader(200)
		return
	}
	code := connectCodes[st.status]
	if code == "" {
		code = "unknown"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(st.status)
	fmt.Fprintf(w, `{"code":%q,"message":"scripted %d"}`, code, st.status)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	logPath := flag.String("log", "", "JSON lines log (required)")
	cert := flag.String("cert", "", "server certificate (PEM): serve HTTPS")
	key := flag.String("key", "", "server key (PEM)")
	clientCA := flag.String("clientca", "", "require client certificates from this CA")
	script := flag.String("script", "", "answers, e.g. 503,reset,200@5000")
	delayMs := flag.Int("delay", 0, "delay every answer by this many ms")
	flag.Parse()
	if *logPath == "" {
		fmt.Fprintln(os.Stderr, "receiver: -log is required")
		os.Exit(2)
	}
	steps, err := parseScript(*script)
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver: bad -script:", err)
		os.Exit(2)
	}
	f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
	s := &server{script: steps, delay: time.Duration(*delayMs) * time.Millisecond,
		log: f, logDir: *logPath}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			fmt.Fprintln(os.Stderr, "receiver:", err)
			os.Exit(1)
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{pair},
			NextProtos: []string{"h2", "http/1.1"}}
		if *clientCA != "" {
			pem, err := os.ReadFile(*clientCA)
			if err != nil {
				fmt.Fprintln(os.Stderr, "receiver:", err)
				os.Exit(1)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			cfg.ClientCAs = pool
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		ln = tls.NewListener(ln, cfg)
	}
	// The test waits for this line before sending.
	fmt.Printf("listening %s\n", ln.Addr())
	os.Stdout.Sync()
	srv := &http.Server{Handler: s}
	_ = srv.Serve(ln)
}
