# src/ctl: rules for this area (included from the top-level Makefile.am)
