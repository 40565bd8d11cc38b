# data: rules for this area (included from the top-level Makefile.am)

# Documented example configuration, installed as documentation: the agent's
# bluegreend.conf and a job definition for the example job.
bgexamplesdir = $(docdir)/examples
dist_bgexamples_DATA = \
	data/bluegreend.conf \
	data/example.job

# The journal message catalog: one entry per MESSAGE_ID of
# src/daemon/log.h (journalctl --update-catalog makes journalctl use it).
bgcatalogdir = $(prefix)/lib/systemd/catalog
dist_bgcatalog_DATA = data/bluegreen.catalog
