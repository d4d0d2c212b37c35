# mk/install.mk -- `make install`, `make uninstall` and `make deb`, included
# by the Makefile. Directory variables follow the GNU conventions; DESTDIR
# stages an install (packaging, tests). docs/operations.md tells the story.
#
#   make install                          /usr/local/sbin/tcplb, /usr/local/etc/tcplb/...
#   make install PREFIX=/usr sysconfdir=/etc
#   make install DESTDIR=/tmp/stage       the same tree under /tmp/stage
#
# The example config is installed only where none exists: an edited
# $(sysconfdir)/tcplb/tcplb.ini is never replaced, and uninstall removes it
# only while it is byte for byte the shipped example.

PREFIX         ?= /usr/local
# GNU spells it prefix; either may be given.
prefix         ?= $(PREFIX)
exec_prefix    ?= $(prefix)
sbindir        ?= $(exec_prefix)/sbin
bindir         ?= $(exec_prefix)/bin
datarootdir    ?= $(prefix)/share
mandir         ?= $(datarootdir)/man
sysconfdir     ?= $(prefix)/etc
# systemd reads /usr/local/lib/systemd/system as well as /lib and /usr/lib.
systemdunitdir ?= $(prefix)/lib/systemd/system
logrotatedir   ?= $(sysconfdir)/logrotate.d
INSTALL        ?= install

INSTALL_CONF   := $(DESTDIR)$(sysconfdir)/tcplb/tcplb.ini
# what install puts, bar the example config: path in DESTDIR, source, mode
INSTALL_MANS   := man/tcplb.8 man/tcplb.ini.5 man/tcplbctl.1 man/logreport.1 man/skewload.1
INSTALL_FILES  := $(DESTDIR)$(sbindir)/tcplb:$(BUILD)/tcplb:0755 \
                  $(DESTDIR)$(bindir)/tcplbctl:tools/tcplbctl:0755 \
                  $(DESTDIR)$(bindir)/logreport:tools/logreport:0755 \
                  $(DESTDIR)$(bindir)/skewload:$(BUILD)/skewload:0755 \
                  $(foreach m,$(INSTALL_MANS),\
                      $(DESTDIR)$(mandir)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)):$(m):0644) \
                  $(DESTDIR)$(systemdunitdir)/tcplb.service:$(BUILD)/tcplb.service:0644 \
                  $(DESTDIR)$(logrotatedir)/tcplb:conf/tcplb.logrotate:0644

.PHONY: install uninstall deb

# The unit names the binary and the config by their installed paths, so it
# is written afresh by every install, for the directories of that install.
install: $(BUILD)/tcplb $(BUILD)/skewload
	@for m in $(INSTALL_MANS); do [ -f $$m ] || { \
	    echo "install: $$m is missing" >&2; exit 1; }; done
	sed -e 's|@sbindir@|$(sbindir)|g' -e 's|@sysconfdir@|$(sysconfdir)|g' \
	    conf/tcplb.service.in > $(BUILD)/tcplb.service
	@set -e; for f in $(INSTALL_FILES); do \
	    dst=$${f%%:*}; rest=$${f#*:}; src=$${rest%%:*}; mode=$${rest##*:}; \
	    echo "$(INSTALL) -D -m $$mode $$src $$dst"; \
	    $(INSTALL) -D -m $$mode $$src $$dst; done
	@if [ -e $(INSTALL_CONF) ]; then \
	    echo "install: kept the existing $(INSTALL_CONF); the shipped example is conf/tcplb.ini"; \
	else \
	    echo "$(INSTALL) -D -m 0644 conf/tcplb.ini $(INSTALL_CONF)"; \
	    $(INSTALL) -D -m 0644 conf/tcplb.ini $(INSTALL_CONF); \
	    echo "install: installed the example config $(INSTALL_CONF)"; \
	fi

uninstall:
	@for f in $(INSTALL_FILES); do dst=$${f%%:*}; \
	    if [ -e $$dst ] || [ -L $$dst ]; then echo "rm -f $$dst"; rm -f $$dst; fi; done
	@if [ ! -e $(INSTALL_CONF) ]; then :; \
	elif cmp -s conf/tcplb.ini $(INSTALL_CONF); then \
	    echo "rm -f $(INSTALL_CONF)"; rm -f $(INSTALL_CONF); \
	    rmdir $(DESTDIR)$(sysconfdir)/tcplb 2>/dev/null || true; \
	else \
	    echo "uninstall: kept $(INSTALL_CONF): it differs from the shipped example"; \
	fi

# A Debian package (debian/), built from a copy of the tree in $(DEB_DIR)
# so that nothing is written next to the tree (dpkg-buildpackage puts its
# output in the parent directory) and the build's `make clean` does not
# take this build/ with it. Output: $(DEB_DIR)/tcplb_VERSION_ARCH.deb, then
# lintian, which fails the target on an error.
DEB_DIR     ?= $(BUILD)/deb
DEB_VERSION  = $(shell dpkg-parsechangelog -S Version 2>/dev/null)
DEB_SRC      = $(DEB_DIR)/tcplb-$(shell dpkg-parsechangelog -S Version 2>/dev/null | sed 's/-[^-]*$$//')

deb:
	@for t in dpkg-buildpackage dh lintian; do command -v $$t >/dev/null 2>&1 || { \
	    echo "deb: $$t is missing (make test-deps installs it)" >&2; exit 1; }; done
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	tar -cf - --exclude='./build*' --exclude=./.git --exclude=__pycache__ . | \
	    tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b
	rm -rf $(DEB_SRC)
	lintian --fail-on error $(DEB_DIR)/tcplb_$(DEB_VERSION)_*.deb
	@ls -l $(DEB_DIR)/*.deb
