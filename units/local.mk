# systemd units. bluegreend.service is generated from one template for the
# system manager and for a user manager (what the tests and the demo use).
# The user variant drops ProtectHome= and ProtectKernelTunables=, which a
# user manager in a private mount namespace cannot set up (status 226);
# see docs/testing.md.
systemdsystemunit_DATA = units/bluegreend.service units/bluegreen.slice
systemduserunit_DATA = units/user/bluegreend.service units/bluegreen.slice
units/bluegreend.service: units/bluegreend.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) units && sed -e 's|%sbindir%|$(sbindir)|g' -e 's|%mode%|--system|' -e '/^#%hardening%/d' $< > $@.tmp && mv $@.tmp $@
units/user/bluegreend.service: units/bluegreend.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) units/user && sed -e 's|%sbindir%|$(sbindir)|g' -e 's|%mode%|--user|' \
		-e '/^ProtectHome=/d' -e '/^ProtectKernelTunables=/d' \
		-e '/^StateDirectory/d' -e '/^ConfigurationDirectory/d' \
		-e '/^ReadWritePaths=/d' -e '/^CapabilityBoundingSet=/d' \
		-e 's|^#%hardening%|# User-manager variant: ProtectHome, ProtectKernelTunables, the state and\n# configuration directories and the capability bounding set are not set here.|' \
		-e 's|^WantedBy=multi-user.target|WantedBy=default.target|' $< > $@.tmp && mv $@.tmp $@
# The build-tree user unit used by the tests: binaries from the build dir,
# config and state under a directory given in the environment.
units/test/bluegreend.service: units/bluegreend.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) units/test && sed -e 's|%sbindir%/bluegreend %mode%|$(abs_top_builddir)/bluegreend --user --config=$${BLUEGREEN_TEST_CONFIG}|' \
		-e '/^ProtectHome=/d' -e '/^ProtectKernelTunables=/d' \
		-e '/^StateDirectory/d' -e '/^ConfigurationDirectory/d' \
		-e '/^ReadWritePaths=/d' -e '/^CapabilityBoundingSet=/d' -e '/^ProtectSystem=/d' -e '/^PrivateTmp=/d' \
		-e 's|^#%hardening%|# Test variant (build tree): paths under the test directory must stay writable.|' \
		-e 's|^WantedBy=multi-user.target|WantedBy=default.target|' $< > $@.tmp && mv $@.tmp $@
CLEANFILES += units/bluegreend.service units/user/bluegreend.service units/test/bluegreend.service
EXTRA_DIST += units/bluegreend.service.in units/bluegreen.slice
noinst_DATA = units/test/bluegreend.service
