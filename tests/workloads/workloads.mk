# tests/workloads/workloads.mk - programs the end-to-end tests profile.
# Included by the top Makefile before its rules; adds to WORKLOADS.
#
# Built with plain $(CC) and their own flags, never $(CFLAGS): no
# sanitizers (SAN=1), no fortify, and always frame pointers (including in
# leaf functions), -O1 -g, no tail calls and no identical-code folding, so a
# frame-pointer unwinder sees every function the tests name.

WL_OUT := $(BUILD)/workloads
WL_SRC := tests/workloads
WL_DEBUG := $(WL_OUT)/debug

OBJCOPY ?= objcopy
STRIP ?= strip
READELF ?= readelf

WL_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE \
	-fno-omit-frame-pointer -mno-omit-leaf-frame-pointer \
	-fno-optimize-sibling-calls -fno-ipa-icf -Wl,--build-id
# Header dependencies: the .d files land in $(BUILD), where the top
# Makefile picks them up.
WL_DEPS = -MMD -MP -MT $@ -MF $@.d

WORKLOADS += $(WL_OUT)/libwl.so $(WL_OUT)/wl_split $(WL_OUT)/wl_nopie \
	$(WL_OUT)/wl_stripped $(WL_OUT)/wl_syscall $(WL_OUT)/wl_debuglink \
	$(WL_OUT)/wl_mangled

$(WL_OUT)/libwl.so: $(WL_SRC)/libwl.c
	@mkdir -p $(@D)
	$(CC) $(WL_CFLAGS) $(WL_DEPS) -fPIC -shared $< -o $@

# PIE, linked against libwl.so found next to it at run time.
$(WL_OUT)/wl_split: $(WL_SRC)/wl_split.c $(WL_OUT)/libwl.so
	@mkdir -p $(@D)
	$(CC) $(WL_CFLAGS) $(WL_DEPS) -fPIE -pie $< -L$(WL_OUT) -lwl \
		-Wl,-rpath,'$$ORIGIN' -o $@

$(WL_OUT)/wl_nopie: $(WL_SRC)/wl_nopie.c
	@mkdir -p $(@D)
	$(CC) $(WL_CFLAGS) $(WL_DEPS) -fno-pie -no-pie $< -o $@

# Its two functions carry C++-mangled names (asm labels), for --demangle.
$(WL_OUT)/wl_mangled: $(WL_SRC)/wl_mangled.c
	@mkdir -p $(@D)
	$(CC) $(WL_CFLAGS) $(WL_DEPS) -fPIE -pie $< -o $@

$(WL_OUT)/wl_syscall: $(WL_SRC)/wl_syscall.c
	@mkdir -p $(@D)
	$(CC) $(WL_CFLAGS) $(WL_DEPS) -fPIE -pie $< -o $@

# Stripped, with its debug info split off where gdb looks it up by GNU
# build id: $(WL_DEBUG)/.build-id/<first byte>/<rest>.debug, plus a
# .gnu_debuglink naming that file.
$(WL_OUT)/wl_stripped: $(WL_SRC)/wl_stripped.c
	@mkdir -p $(@D)
	$(CC) $(WL_CFLAGS) $(WL_DEPS) -fPIE -pie $< -o $@.full
	id=$$(LC_ALL=C $(READELF) -n $@.full | \
		sed -n 's/^ *Build ID: *\([0-9a-f][0-9a-f]*\) *$$/\1/p'); \
	[ $${#id} -gt 2 ] || { echo "$@: no GNU build id" >&2; exit 1; }; \
	dbg=$(WL_DEBUG)/.build-id/$$(printf %s $$id | cut -c1-2)/$$(printf %s $$id | cut -c3-).debug; \
	mkdir -p $$(dirname $$dbg) && \
	$(OBJCOPY) --only-keep-debug $@.full $$dbg && \
	$(STRIP) --strip-all $@.full -o $@.tmp && \
	$(OBJCOPY) --add-gnu-debuglink=$$dbg $@.tmp && \
	rm -f $@.full && mv $@.tmp $@

# Stripped and without a build id: only .gnu_debuglink (name and CRC32)
# leads to its debug file, which sits where gdb looks second:
# $(WL_OUT)/.debug/wl_debuglink.debug (the probe's OPEN_DEBUGLINK).
$(WL_OUT)/wl_debuglink: $(WL_SRC)/wl_debuglink.c
	@mkdir -p $(@D)/.debug
	$(CC) $(WL_CFLAGS) -Wl,--build-id=none $(WL_DEPS) -fPIE -pie $< -o $@.full
	! LC_ALL=C $(READELF) -n $@.full | grep -q 'Build ID'
	$(OBJCOPY) --only-keep-debug $@.full $(@D)/.debug/wl_debuglink.debug
	$(STRIP) --strip-all $@.full -o $@.tmp
	$(OBJCOPY) --add-gnu-debuglink=$(@D)/.debug/wl_debuglink.debug $@.tmp
	rm -f $@.full && mv $@.tmp $@
