# man: the manual pages, the bash completion of bluegreenctl, and the tests
# of both and of the shipped translation (included from the top-level
# Makefile.am). Pages are hand-written roff, so nothing is generated here.
dist_man_MANS += \
	man/bluegreenctl.1 \
	man/bluegreen-verify.1 \
	man/bluegreen-example-job.1 \
	man/bluegreend.8 \
	man/bluegreend.conf.5 \
	man/bluegreen.job.5

# Where bash-completion looks for completions on demand. configure does not
# ask pkg-config (bash-completion's completionsdir) yet; override with
# `make bashcompletiondir=DIR` if a distribution puts them elsewhere.
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = data/completion/bluegreenctl

# [man] every page renders without warnings; [i18n] bluegreenctl speaks
# German from the built catalog; [completion] the completion's COMPREPLY.
TESTS += tests/test-man.sh tests/test-i18n.sh tests/test-completion.sh
dist_check_SCRIPTS += tests/test-man.sh tests/test-i18n.sh tests/test-completion.sh
include tests/ctl.mk
