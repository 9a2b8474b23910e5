/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/stat.h>

#include "elfsym.h"

#define MAX_SECTION_BYTES	(256u << 20)
#define MAX_PHDRS		1024

struct elfsym_sym {
	uint64_t addr;
	uint32_t size;
	uint32_t name;		/* offset in pool */
};

struct elfsym_seg {
	uint64_t offset;
	uint64_t filesz;
	uint64_t vaddr;
};

struct elfsym {
	struct elfsym_sym *syms;
	size_t nsyms;
	char *pool;
	size_t pool_len;
	struct elfsym_seg *segs;
	size_t nsegs;
	uint8_t build_id[ELFSYM_MAX_BUILD_ID];
	size_t build_id_len;
	char build_id_hex[2 * ELFSYM_MAX_BUILD_ID + 1];
	char *debuglink;
	uint32_t debuglink_crc;
	bool has_symtab;
};

/* A symbol while the table is built; compacted to elfsym_sym at the end. */
struct rawsym {
	uint64_t addr;
	uint64_t size;		/* 0: unknown, bounded by the next symbol */
	uint64_t limit;		/* end of the containing section, 0: unknown */
	uint32_t name;
	uint32_t rank;		/* among aliases at one address, highest wins */
};

struct builder {
	struct rawsym *raw;
	size_t n, cap;
	char *pool;
	size_t pool_len, pool_cap;
};

/* What the symbol pass needs to know of each section. */
struct secinfo {
	uint64_t addr;
	uint64_t size;
	bool exec;
};

struct parse {
	Elf *elf;
	uint64_t fsize;
	size_t shnum;
	struct secinfo *secs;
	struct elfsym *es;
	struct builder b;
};

static size_t builder_mem(const struct builder *b, size_t nraw, size_t pool)
{
	return nraw * sizeof(*b->raw) + pool;
}

static int builder_grow_raw(struct builder *b)
{
	size_t ncap = b->cap ? b->cap * 2 : 1024;
	struct rawsym *nr;

	if (builder_mem(b, ncap, b->pool_cap) > ELFSYM_MAX_MEM)
		ncap = (ELFSYM_MAX_MEM - b->pool_cap) / sizeof(*b->raw);
	if (ncap <= b->cap)
		return -E2BIG;
	nr = reallocarray(b->raw, ncap, sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	b->raw = nr;
	b->cap = ncap;
	return 0;
}

static int builder_add_name(struct builder *b, const char *s, size_t len,
			    uint32_t *off)
{
	size_t need = b->pool_len + len + 1, ncap = b->pool_cap;
	char *np;

	if (need > b->pool_cap) {
		while (ncap < need)
			ncap = ncap ? ncap * 2 : 64 << 10;
		if (builder_mem(b, b->cap, ncap) > ELFSYM_MAX_MEM)
			ncap = need;
		if (builder_mem(b, b->cap, ncap) > ELFSYM_MAX_MEM)
			return -E2BIG;
		np = realloc(b->pool, ncap);
		if (!np)
			return -ENOMEM;
		b->pool = np;
		b->pool_cap = ncap;
	}
	memcpy(b->pool + b->pool_len, s, len);
	b->pool[b->pool_len + len] = '\0';
	*off = (uint32_t)b->pool_len;
	b->pool_len = need;
	return 0;
}

static int builder_add(struct builder *b, const struct rawsym *rs,
		       const char *name, size_t len)
{
	int ret;

	if (b->n == b->cap && (ret = builder_grow_raw(b)) < 0)
		return ret;
	b->raw[b->n] = *rs;
	ret = builder_add_name(b, name, len, &b->raw[b->n].name);
	if (ret < 0)
		return ret;
	b->n++;
	return 0;
}

static void builder_free(struct builder *b)
{
	free(b->raw);
	free(b->pool);
	memset(b, 0, sizeof(*b));
}

/* ---- finishing: sort, dedupe aliases, bound size-0 symbols ------------- */

static int cmp_raw(const void *a, const void *b, void *pool_arg)
{
	const struct rawsym *x = a, *y = b;
	const char *sort_pool = pool_arg;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	if ((x->size != 0) != (y->size != 0))
		return x->size ? -1 : 1;
	return strcmp(sort_pool + x->name, sort_pool + y->name);
}

static uint32_t bounded_size(const struct rawsym *r, const struct rawsym *next)
{
	uint64_t end = r->size ? r->addr + r->size : 0;

	if (!end) {
		end = next ? next->addr : r->limit;
		if (r->limit && r->limit > r->addr && r->limit < end)
			end = r->limit;
	}
	if (end <= r->addr)
		return 1;
	return end - r->addr > UINT32_MAX ? UINT32_MAX :
	       (uint32_t)(end - r->addr);
}

/* Moves the builder's symbols and pool into es; the builder is emptied. */
static int builder_finish(struct builder *b, struct elfsym *es)
{
	size_t i, w = 0;

	if (b->n)
		qsort_r(b->raw, b->n, sizeof(*b->raw), cmp_raw, b->pool);
	for (i = 0; i < b->n; i++)
		if (w == 0 || b->raw[i].addr != b->raw[w - 1].addr)
			b->raw[w++] = b->raw[i];
	es->syms = calloc(w ? w : 1, sizeof(*es->syms));
	if (!es->syms)
		return -ENOMEM;
	for (i = 0; i < w; i++) {
		es->syms[i].addr = b->raw[i].addr;
		es->syms[i].size = bounded_size(&b->raw[i],
						i + 1 < w ? &b->raw[i + 1] : NULL);
		es->syms[i].name = b->raw[i].name;
	}
	es->nsyms = w;
	es->pool = b->pool;
	es->pool_len = b->pool_len;
	b->pool = NULL;
	builder_free(b);
	return 0;
}

/* ---- sections ----------------------------------------------------------- */

/* A section whose bytes we read must lie inside the file. */
static bool section_in_file(const struct parse *p, const GElf_Shdr *sh)
{
	if (sh->sh_type == SHT_NOBITS)
		return false;
	return sh->sh_offset <= p->fsize && sh->sh_size <= MAX_SECTION_BYTES &&
	       sh->sh_size <= p->fsize - sh->sh_offset;
}

static Elf_Data *section_data(const struct parse *p, size_t idx,
			      Elf64_Word type, GElf_Shdr *sh)
{
	Elf_Scn *scn;
	Elf_Data *d;

	if (idx == 0 || idx >= p->shnum)
		return NULL;
	scn = elf_getscn(p->elf, idx);
	if (!scn || !gelf_getshdr(scn, sh) || sh->sh_type != type ||
	    !section_in_file(p, sh))
		return NULL;
	d = elf_getdata(scn, NULL);
	if (!d || !d->d_buf || d->d_size > sh->sh_size)
		return NULL;
	return d;
}

static int load_secinfo(struct parse *p)
{
	size_t i;
	GElf_Shdr sh;

	p->secs = calloc(p->shnum ? p->shnum : 1, sizeof(*p->secs));
	if (!p->secs)
		return -ENOMEM;
	for (i = 1; i < p->shnum; i++) {
		Elf_Scn *scn = elf_getscn(p->elf, i);

		if (!scn || !gelf_getshdr(scn, &sh))
			return -EINVAL;
		p->secs[i].addr = sh.sh_addr;
		p->secs[i].size = sh.sh_size;
		p->secs[i].exec = sh.sh_flags & SHF_EXECINSTR;
	}
	return 0;
}

/* ---- symbols ------------------------------------------------------------ */

static uint32_t bind_rank(unsigned char bind)
{
	switch (bind) {
	case STB_GLOBAL:
		return 3;
	case STB_WEAK:
		return 2;
	default:
		return 1;
	}
}

/* Fills rs for a function symbol worth keeping; false to skip it. */
static bool want_symbol(const struct parse *p, const GElf_Sym *s,
			struct rawsym *rs)
{
	unsigned char type = GELF_ST_TYPE(s->st_info);

	if (type != STT_FUNC && type != STT_GNU_IFUNC &&
	    !(type == STT_NOTYPE && s->st_size > 0))
		return false;
	if (s->st_value == 0 || s->st_shndx == SHN_UNDEF ||
	    s->st_shndx == SHN_XINDEX)
		return false;
	memset(rs, 0, sizeof(*rs));
	if (s->st_shndx < SHN_LORESERVE) {
		const struct secinfo *sec;

		if (s->st_shndx >= p->shnum)
			return false;
		sec = &p->secs[s->st_shndx];
		/* NOTYPE labels in data sections are not code. */
		if (!sec->exec)
			return false;
		if (sec->addr + sec->size > sec->addr)
			rs->limit = sec->addr + sec->size;
	}
	rs->addr = s->st_value;
	rs->size = s->st_size;
	rs->rank = bind_rank(GELF_ST_BIND(s->st_info));
	return true;
}

static int add_symbol(struct parse *p, const GElf_Sym *s, const Elf_Data *str)
{
	struct rawsym rs;
	const char *name;
	size_t len;

	if (!want_symbol(p, s, &rs) || s->st_name == 0 ||
	    s->st_name >= str->d_size)
		return 0;
	name = (const char *)str->d_buf + s->st_name;
	len = strnlen(name, str->d_size - s->st_name);
	if (len == str->d_size - s->st_name || len == 0)
		return 0;	/* unterminated: hostile string table */
	if (len > ELFSYM_MAX_NAME)
		len = ELFSYM_MAX_NAME;
	return builder_add(&p->b, &rs, name, len);
}

static int collect_table(struct parse *p, size_t idx, Elf64_Word type)
{
	GElf_Shdr sh, strsh;
	Elf_Data *d, *str;
	size_t i, n;
	int ret;

	d = section_data(p, idx, type, &sh);
	if (!d)
		return -EINVAL;
	str = section_data(p, sh.sh_link, SHT_STRTAB, &strsh);
	if (!str)
		return -EINVAL;
	n = d->d_size / gelf_fsize(p->elf, ELF_T_SYM, 1, EV_CURRENT);
	for (i = 1; i < n; i++) {
		GElf_Sym s;

		if (!gelf_getsym(d, (int)i, &s))
			return -EINVAL;
		ret = add_symbol(p, &s, str);
		if (ret < 0)
			return ret;
	}
	if (type == SHT_SYMTAB)
		p->es->has_symtab = true;
	return 0;
}

/* A bad symbol table is skipped, not fatal: the other one may be fine. */
static int collect_symbols(struct parse *p)
{
	size_t i;
	int ret;

	for (i = 1; i < p->shnum; i++) {
		GElf_Shdr sh;
		Elf_Scn *scn = elf_getscn(p->elf, i);

		if (!scn || !gelf_getshdr(scn, &sh))
			return -EINVAL;
		if (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM)
			continue;
		ret = collect_table(p, i, sh.sh_type);
		if (ret == -E2BIG || ret == -ENOMEM)
			return ret;
	}
	return 0;
}

/* ---- notes, debuglink, segments ---------------------------------------- */

static void set_build_id(struct elfsym *es, const uint8_t *id, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	memcpy(es->build_id, id, len);
	es->build_id_len = len;
	for (i = 0; i < len; i++) {
		es->build_id_hex[2 * i] = hex[id[i] >> 4];
		es->build_id_hex[2 * i + 1] = hex[id[i] & 15];
	}
	es->build_id_hex[2 * len] = '\0';
}

static bool scan_notes(struct elfsym *es, Elf_Data *d)
{
	size_t off = 0, next, name_off, desc_off;
	GElf_Nhdr nh;

	while (off < d->d_size &&
	       (next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > off) {
		const char *base = d->d_buf;

		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    name_off + 4 <= d->d_size &&
		    memcmp(base + name_off, "GNU", 4) == 0 &&
		    nh.n_descsz > 0 && nh.n_descsz <= ELFSYM_MAX_BUILD_ID &&
		    desc_off <= d->d_size && nh.n_descsz <= d->d_size - desc_off) {
			set_build_id(es, (const uint8_t *)base + desc_off,
				     nh.n_descsz);
			return true;
		}
		off = next;
	}
	return false;
}

static void find_build_id_sections(struct parse *p)
{
	size_t i;

	for (i = 1; i < p->shnum; i++) {
		GElf_Shdr sh;
		Elf_Data *d = section_data(p, i, SHT_NOTE, &sh);

		if (d && scan_notes(p->es, d))
			return;
	}
}

/* Files without section headers still carry the note in a PT_NOTE. */
static void find_build_id_phdrs(struct parse *p, size_t phnum)
{
	size_t i;

	for (i = 0; i < phnum && !p->es->build_id_len; i++) {
		GElf_Phdr ph;
		Elf_Data *d;

		if (!gelf_getphdr(p->elf, (int)i, &ph) || ph.p_type != PT_NOTE ||
		    ph.p_offset > p->fsize || ph.p_filesz > p->fsize - ph.p_offset ||
		    ph.p_filesz == 0 || ph.p_filesz > MAX_SECTION_BYTES)
			continue;
		d = elf_getdata_rawchunk(p->elf, (int64_t)ph.p_offset,
					 ph.p_filesz, ELF_T_NHDR);
		if (d)
			(void)scan_notes(p->es, d);
	}
}

static uint32_t read_u32(const unsigned char *b, bool big_endian)
{
	if (big_endian)
		return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
		       (uint32_t)b[2] << 8 | b[3];
	return (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[1] << 8 | b[0];
}

/* .gnu_debuglink: NUL-terminated name, padding to 4, then a CRC32. */
static int parse_debuglink(struct parse *p, const Elf_Data *d, bool be)
{
	const char *name = d->d_buf;
	size_t len = strnlen(name, d->d_size), crc_off = (len + 4) & ~(size_t)3;

	if (len == 0 || len > ELFSYM_MAX_NAME || crc_off + 4 > d->d_size)
		return 0;
	p->es->debuglink = strndup(name, len);
	if (!p->es->debuglink)
		return -ENOMEM;
	p->es->debuglink_crc = read_u32((const unsigned char *)name + crc_off, be);
	return 0;
}

static int find_debuglink(struct parse *p, bool be)
{
	size_t i, shstrndx;

	if (elf_getshdrstrndx(p->elf, &shstrndx) < 0)
		return 0;
	for (i = 1; i < p->shnum; i++) {
		GElf_Shdr sh;
		Elf_Scn *scn = elf_getscn(p->elf, i);
		const char *nm;
		Elf_Data *d;

		if (!scn || !gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS)
			continue;
		nm = elf_strptr(p->elf, shstrndx, sh.sh_name);
		if (!nm || strcmp(nm, ".gnu_debuglink") != 0)
			continue;
		d = section_data(p, i, SHT_PROGBITS, &sh);
		return d ? parse_debuglink(p, d, be) : 0;
	}
	return 0;
}

static int load_segments(struct parse *p, size_t phnum)
{
	size_t i;

	if (phnum > MAX_PHDRS)
		return -EINVAL;
	p->es->segs = calloc(phnum ? phnum : 1, sizeof(*p->es->segs));
	if (!p->es->segs)
		return -ENOMEM;
	for (i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		struct elfsym_seg *sg = &p->es->segs[p->es->nsegs];

		if (!gelf_getphdr(p->elf, (int)i, &ph))
			return -EINVAL;
		if (ph.p_type != PT_LOAD || ph.p_filesz == 0 ||
		    ph.p_offset + ph.p_filesz < ph.p_offset)
			continue;
		sg->offset = ph.p_offset;
		sg->filesz = ph.p_filesz;
		sg->vaddr = ph.p_vaddr;
		p->es->nsegs++;
	}
	return 0;
}

/* ---- open --------------------------------------------------------------- */

static int check_header(Elf *elf, bool *big_endian)
{
	GElf_Ehdr eh;

	if (elf_kind(elf) != ELF_K_ELF)
		return -ENOEXEC;
	if (!gelf_getehdr(elf, &eh))
		return -EINVAL;
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return -ENOEXEC;
	*big_endian = eh.e_ident[EI_DATA] == ELFDATA2MSB;
	return 0;
}

/* libelf in READ mode does not check that the header tables fit the file. */
static bool table_in_file(uint64_t fsize, uint64_t off, size_t n,
			  size_t entsize, size_t want_entsize)
{
	if (n == 0)
		return true;
	return entsize == want_entsize && off <= fsize &&
	       n <= (fsize - off) / entsize;
}

static int check_layout(struct parse *p, size_t *phnum)
{
	GElf_Ehdr eh;
	bool is64;

	if (!gelf_getehdr(p->elf, &eh))
		return -EINVAL;
	is64 = gelf_getclass(p->elf) == ELFCLASS64;
	if (eh.e_shoff > p->fsize || eh.e_phoff > p->fsize)
		return -EINVAL;
	if (elf_getshdrnum(p->elf, &p->shnum) < 0 ||
	    elf_getphdrnum(p->elf, phnum) < 0)
		return -EINVAL;
	/* libelf may clamp a too-large e_shnum; a lying header is hostile. */
	if (!table_in_file(p->fsize, eh.e_shoff, eh.e_shnum, eh.e_shentsize,
			   is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)) ||
	    !table_in_file(p->fsize, eh.e_shoff, p->shnum, eh.e_shentsize,
			   is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)) ||
	    !table_in_file(p->fsize, eh.e_phoff, *phnum, eh.e_phentsize,
			   is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)))
		return -EINVAL;
	return 0;
}

static int parse_elf(struct parse *p)
{
	size_t phnum;
	bool be;
	int ret;

	if ((ret = check_header(p->elf, &be)) < 0 ||
	    (ret = check_layout(p, &phnum)) < 0)
		return ret;
	if ((ret = load_secinfo(p)) < 0 || (ret = load_segments(p, phnum)) < 0 ||
	    (ret = collect_symbols(p)) < 0 || (ret = find_debuglink(p, be)) < 0)
		return ret;
	/* Without a loadable segment no runtime address can be translated. */
	if (p->es->nsegs == 0)
		return -EINVAL;
	find_build_id_sections(p);
	if (!p->es->build_id_len)
		find_build_id_phdrs(p, phnum);
	return builder_finish(&p->b, p->es);
}

static int parse_with(Elf *elf, uint64_t fsize, struct elfsym **out)
{
	struct parse p = { .elf = elf, .fsize = fsize };
	int ret;

	*out = NULL;
	if (!elf)
		return -ENOEXEC;
	p.es = calloc(1, sizeof(*p.es));
	if (!p.es) {
		ret = -ENOMEM;
		goto out;
	}
	ret = parse_elf(&p);
	if (ret == 0) {
		*out = p.es;
		p.es = NULL;
	}
out:
	builder_free(&p.b);
	free(p.secs);
	elfsym_free(p.es);
	elf_end(elf);
	return ret;
}

static void libelf_init(void)
{
	static bool done;

	if (!done) {
		(void)elf_version(EV_CURRENT);
		done = true;
	}
}

int elfsym_open_fd(int fd, struct elfsym **out)
{
	struct stat st;

	*out = NULL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size < (off_t)sizeof(Elf32_Ehdr))
		return -ENOEXEC;
	libelf_init();
	/* ELF_C_READ: pread, never mmap (truncation would raise SIGBUS). */
	return parse_with(elf_begin(fd, ELF_C_READ, NULL), (uint64_t)st.st_size,
			  out);
}

int elfsym_open_mem(const void *buf, size_t len, struct elfsym **out)
{
	char *copy;
	int ret;

	*out = NULL;
	if (len < sizeof(Elf32_Ehdr))
		return -ENOEXEC;
	/* A private copy: libelf wants a writable buffer and may keep
	 * pointers into it until elf_end. */
	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, len);
	libelf_init();
	ret = parse_with(elf_memory(copy, len), len, out);
	free(copy);
	return ret;
}

/* The in-memory vDSO is a complete ELF file image starting at its header. */
static size_t vdso_image_size(const Elf64_Ehdr *eh)
{
	const Elf64_Phdr *ph;
	size_t i, end;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_phentsize != sizeof(*ph) || eh->e_phnum > 64 ||
	    eh->e_phoff > 4096 - 64 * sizeof(*ph))
		return 0;
	ph = (const Elf64_Phdr *)((const char *)eh + eh->e_phoff);
	end = eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;
	for (i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset + ph[i].p_filesz > end)
			end = ph[i].p_offset + ph[i].p_filesz;
	return end <= (1u << 20) ? end : 0;
}

int elfsym_open_vdso(struct elfsym **out)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)getauxval(AT_SYSINFO_EHDR);
	size_t len;

	*out = NULL;
	if (!eh)
		return -ENOENT;
	len = vdso_image_size(eh);
	if (!len)
		return -ENOEXEC;
	return elfsym_open_mem(eh, len, out);
}

void elfsym_free(struct elfsym *es)
{
	if (!es)
		return;
	free(es->syms);
	free(es->pool);
	free(es->segs);
	free(es->debuglink);
	free(es);
}

/* ---- queries ------------------------------------------------------------ */

const char *elfsym_lookup(const struct elfsym *es, uint64_t vaddr,
			  uint64_t *offset_in_func)
{
	size_t lo = 0, hi = es->nsyms;
	const struct elfsym_sym *s;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (es->syms[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	s = &es->syms[lo - 1];
	if (vaddr - s->addr >= s->size)
		return NULL;
	if (offset_in_func)
		*offset_in_func = vaddr - s->addr;
	return es->pool + s->name;
}

int elfsym_file_to_vaddr(const struct elfsym *es, uint64_t file_offset,
			 uint64_t *vaddr)
{
	size_t i;

	for (i = 0; i < es->nsegs; i++) {
		const struct elfsym_seg *sg = &es->segs[i];

		if (file_offset >= sg->offset &&
		    file_offset - sg->offset < sg->filesz) {
			*vaddr = file_offset - sg->offset + sg->vaddr;
			return 0;
		}
	}
	return -ENOENT;
}

int elfsym_ip_to_vaddr(const struct elfsym *es, uint64_t map_start,
		       uint64_t map_offset, uint64_t ip, uint64_t *vaddr)
{
	if (ip < map_start)
		return -ERANGE;
	return elfsym_file_to_vaddr(es, ip - map_start + map_offset, vaddr);
}

const char *elfsym_build_id(const struct elfsym *es)
{
	return es->build_id_len ? es->build_id_hex : NULL;
}

size_t elfsym_build_id_raw(const struct elfsym *es, const uint8_t **id)
{
	*id = es->build_id;
	return es->build_id_len;
}

const char *elfsym_debuglink(const struct elfsym *es, uint32_t *crc)
{
	if (crc)
		*crc = es->debuglink_crc;
	return es->debuglink;
}

size_t elfsym_count(const struct elfsym *es)
{
	return es->nsyms;
}

bool elfsym_has_symbols(const struct elfsym *es)
{
	return es->nsyms > 0;
}

bool elfsym_has_symtab(const struct elfsym *es)
{
	return es->has_symtab;
}

/* ---- merge -------------------------------------------------------------- */

/* Debug-file symbols outrank the binary's (dynsym) ones at one address. */
#define MERGE_DEBUG_RANK	8

static int add_existing(struct builder *b, const struct elfsym *es,
			uint32_t rank)
{
	size_t i;
	int ret;

	for (i = 0; i < es->nsyms; i++) {
		const struct elfsym_sym *s = &es->syms[i];
		struct rawsym rs = { .addr = s->addr, .size = s->size,
				     .rank = rank };
		const char *name = es->pool + s->name;

		ret = builder_add(b, &rs, name, strlen(name));
		if (ret < 0)
			return ret;
	}
	return 0;
}

int elfsym_merge(struct elfsym *es, const struct elfsym *dbg)
{
	struct builder b = { 0 };
	struct elfsym tmp = { 0 };
	int ret;

	if ((ret = add_existing(&b, es, 1)) < 0 ||
	    (ret = add_existing(&b, dbg, MERGE_DEBUG_RANK)) < 0 ||
	    (ret = builder_finish(&b, &tmp)) < 0)
		goto out;
	free(es->syms);
	free(es->pool);
	es->syms = tmp.syms;
	es->nsyms = tmp.nsyms;
	es->pool = tmp.pool;
	es->pool_len = tmp.pool_len;
	es->has_symtab = es->has_symtab || dbg->has_symtab;
out:
	builder_free(&b);
	return ret;
}
