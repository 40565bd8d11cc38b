/* test-ctl.c — [ctl] bluegreenctl against the real agent: one simulated
 * host (tools/bg-host) running bluegreend as a user service, the Kafka mock
 * and the example job (the fleet fixture with one host), the built
 * bluegreenctl run as an operator would run it (--user, the host's bus in
 * DBUS_SESSION_BUS_ADDRESS), its exit status, stdout and stderr checked.
 *
 * One host serves every test, in order, because the story is cumulative
 * and a fresh host per test would cost seconds each: bad usage and errors
 * first (nothing deployed), then status/list/hosts/reload on an empty job,
 * deploy v1 live, deploy v2 blackholed, sink, retire and redeploy, and
 * last the cutover and the rollback, so their state is what a failure
 * shows.
 *
 * --json output is parsed with json-glib and its structure checked member
 * by member; terminal behaviour (colour, the progress bar) is checked
 * under script(1), which gives the command a pseudo-terminal.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"

#define RUN_MS 90000
#define WAIT_MS 30000
#define JOB BGT_FLEET_JOB

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_NO_AGENT = 3, EXIT_NO_JOB = 4 };

static BgtFleet *fleet;
static gboolean fleet_failed;

/* ---- running bluegreenctl ------------------------------------------------------ */

typedef struct {
  int status;
  char *out;
  char *err;
} Run;

static void
run_clear (Run *r)
{
  g_clear_pointer (&r->out, g_free);
  g_clear_pointer (&r->err, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Run, run_clear)

/* Our environment with the session bus set to @bus (NULL: unset) and
 * colour not forced off, as an operator's shell would have it. */
static char **
ctl_environ (const char *bus)
{
  char **env = g_get_environ ();
  env = g_environ_unsetenv (env, "NO_COLOR");
  if (bus != NULL)
    env = g_environ_setenv (env, "DBUS_SESSION_BUS_ADDRESS", bus, TRUE);
  else
    env = g_environ_unsetenv (env, "DBUS_SESSION_BUS_ADDRESS");
  return env;
}

static const char *
host_bus (void)
{
  return bgt_fleet_host (fleet, 0)->bus_address;
}

/* Runs bluegreenctl --user ARGS... with @env; output captured by pipes,
 * so stdout is not a terminal. */
static void
run_ctl_envv (Run *r, char **env, const char *const *args)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *ctl = bgt_build_path ("bluegreenctl");
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *cmdline = NULL;

  g_assert_nonnull (ctl);
  g_ptr_array_add (argv, ctl);
  g_ptr_array_add (argv, (gpointer) "--user");
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  cmdline = g_strjoinv (" ", (char **) argv->pdata + 1);
  r->status = -1;
  bgt_run ((const char *const *) argv->pdata, (const char *const *) env, RUN_MS, &r->out, &r->err,
           &r->status, &error);
  g_assert_no_error (error);
  g_test_message ("$ bluegreenctl %s  => %d", cmdline, r->status);
  if (r->out != NULL && *r->out != '\0')
    g_test_message ("stdout:\n%s", r->out);
  if (r->err != NULL && *r->err != '\0')
    g_test_message ("stderr:\n%s", r->err);
}

static void
run_ctl (Run *r, const char *first, ...) G_GNUC_NULL_TERMINATED;
static void
run_ctl (Run *r, const char *first, ...)
{
  g_auto (GStrv) env = ctl_environ (host_bus ());
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  va_list ap;

  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  run_ctl_envv (r, env, (const char *const *) args->pdata);
}

/* Runs bluegreenctl --user @args on a pseudo-terminal (script(1)); stdout
 * and stderr arrive together, lines end in \r\n. @extra_env: "K=V" or NULL. */
static void
run_ctl_tty (Run *r, const char *extra_env, const char *args)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *ctl = bgt_build_path ("bluegreenctl");
  g_autofree char *quoted = g_shell_quote (ctl);
  g_autofree char *cmd = g_strdup_printf ("%s --user %s", quoted, args);
  g_auto (GStrv) env = ctl_environ (host_bus ());
  const char *argv[] = { "script", "-qec", cmd, "/dev/null", NULL };

  if (extra_env != NULL)
    {
      g_auto (GStrv) kv = g_strsplit (extra_env, "=", 2);
      env = g_environ_setenv (env, kv[0], kv[1], TRUE);
    }
  r->status = -1;
  bgt_run (argv, (const char *const *) env, RUN_MS, &r->out, &r->err, &r->status, &error);
  g_assert_no_error (error);
  g_test_message ("$ [tty] %s bluegreenctl --user %s  => %d\n%s", extra_env ? extra_env : "", args,
                  r->status, r->out);
}

/* Checks the exit status; on a mismatch, shows the agent's and the job's
 * logs before failing (the rest of the story would fail anyway). */
static void
expect_status (Run *r, int want)
{
  if (r->status != want && !fleet_failed)
    {
      fleet_failed = TRUE;
      g_test_message ("exit status %d, wanted %d", r->status, want);
      bgt_fleet_dump_logs (fleet);
    }
  g_assert_cmpint (r->status, ==, want);
}

/* An error run: @want exit status, nothing on stdout, one "error: " line
 * on stderr containing every one of the NULL-terminated @needles. */
static void
expect_error (Run *r, int want, ...) G_GNUC_NULL_TERMINATED;
static void
expect_error (Run *r, int want, ...)
{
  va_list ap;

  expect_status (r, want);
  g_assert_cmpstr (r->out, ==, "");
  g_assert_true (g_str_has_prefix (r->err, "error: "));
  g_assert_true (g_str_has_suffix (r->err, "\n"));
  /* One line only. */
  g_assert_true (strchr (r->err, '\n') == r->err + strlen (r->err) - 1);
  va_start (ap, want);
  for (const char *n = va_arg (ap, const char *); n != NULL; n = va_arg (ap, const char *))
    /* An empty needle would match any line: every needle must say something. */
    if (*n == '\0' || strstr (r->err, n) == NULL)
      {
        va_end (ap);
        g_test_message ("'%s' is not in the error line", n);
        g_assert_not_reached ();
      }
  va_end (ap);
}

static gboolean
has_escape (const char *s)
{
  return strchr (s, '\033') != NULL;
}

/* Lines of @text starting with @prefix. */
static guint
count_lines (const char *text, const char *prefix)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      n++;
  return n;
}

/* ---- JSON ----------------------------------------------------------------------- */

static JsonNode *
parse_json (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (json_parser_get_root (parser));
  return json_node_copy (json_parser_get_root (parser));
}

static JsonObject *
as_object (JsonNode *node)
{
  g_assert_nonnull (node);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return json_node_get_object (node);
}

static JsonArray *
as_array (JsonNode *node)
{
  g_assert_nonnull (node);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (node));
  return json_node_get_array (node);
}

static JsonNode *
member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL)
    g_test_message ("member '%s' missing", name);
  g_assert_nonnull (n);
  return n;
}

static const char *
member_str (JsonObject *o, const char *name)
{
  JsonNode *n = member (o, name);
  g_assert_true (JSON_NODE_HOLDS_VALUE (n));
  g_assert_cmpint (json_node_get_value_type (n), ==, G_TYPE_STRING);
  return json_node_get_string (n);
}

static gint64
member_int (JsonObject *o, const char *name)
{
  JsonNode *n = member (o, name);
  g_assert_true (JSON_NODE_HOLDS_VALUE (n));
  g_assert_cmpint (json_node_get_value_type (n), ==, G_TYPE_INT64);
  return json_node_get_int (n);
}

static gboolean
member_bool (JsonObject *o, const char *name)
{
  JsonNode *n = member (o, name);
  g_assert_true (JSON_NODE_HOLDS_VALUE (n));
  g_assert_cmpint (json_node_get_value_type (n), ==, G_TYPE_BOOLEAN);
  return json_node_get_boolean (n);
}

/* The "verb"/"ok" object the method verbs print with --json. */
static void
expect_ok_json (Run *r, const char *verb, const char *key, const char *value)
{
  g_autoptr (JsonNode) root = parse_json (r->out);
  JsonObject *o = as_object (root);

  g_assert_cmpstr (member_str (o, "verb"), ==, verb);
  g_assert_true (member_bool (o, "ok"));
  g_assert_cmpuint (json_object_get_size (o), ==, key ? 3 : 2);
  if (key != NULL)
    g_assert_cmpstr (member_str (o, key), ==, value);
}

/* Checks one slot of `status --json` and returns it. */
static JsonObject *
check_slot_json (JsonObject *slots, const char *color)
{
  JsonObject *s = as_object (member (slots, color));
  const char *str_keys[] = { "color", "version", "state", "unit", "activestate", "substate", "sinkmode",
                             "lasterror" };

  for (guint i = 0; i < G_N_ELEMENTS (str_keys); i++)
    member_str (s, str_keys[i]);
  g_assert_cmpstr (member_str (s, "color"), ==, color);
  g_assert_cmpint (member_int (s, "lag"), >=, -1);
  member_bool (s, "ready");
  g_assert_cmpint (member_int (s, "emitted"), >=, 0);
  g_assert_cmpint (member_int (s, "dropped"), >=, 0);
  {
    JsonArray *pos = as_array (member (s, "positions"));
    for (guint i = 0; i < json_array_get_length (pos); i++)
      {
        JsonObject *p = as_object (json_array_get_element (pos, i));
        g_assert_cmpstr (member_str (p, "topic"), ==, BGT_FLEET_INPUT);
        g_assert_cmpint (member_int (p, "partition"), >=, 0);
        g_assert_cmpint (member_int (p, "offset"), >=, -1);
      }
  }
  return s;
}

/* `status --json [JOB]`: checks the whole structure; returns the root and
 * the job's object in @job_out. */
static JsonNode *
status_json (JsonObject **job_out)
{
  g_auto (Run) r = { 0 };
  JsonNode *root;
  JsonObject *o, *job, *slots;
  JsonArray *jobs;

  run_ctl (&r, "--json", "status", JOB, NULL);
  expect_status (&r, EXIT_OK);
  g_assert_false (has_escape (r.out));
  root = parse_json (r.out);
  o = as_object (root);
  g_assert_cmpstr (member_str (o, "host"), ==, bgt_fleet_host_id (fleet, 0));
  g_assert_cmpstr (member_str (o, "agent_version"), !=, "");
  jobs = as_array (member (o, "jobs"));
  g_assert_cmpuint (json_array_get_length (jobs), ==, 1);
  job = as_object (json_array_get_element (jobs, 0));
  g_assert_cmpstr (member_str (job, "name"), ==, JOB);
  member_str (job, "live_color");
  member_str (job, "phase");
  member_str (job, "last_error");
  slots = as_object (member (job, "slots"));
  g_assert_cmpuint (json_object_get_size (slots), ==, 2);
  check_slot_json (slots, "blue");
  check_slot_json (slots, "green");
  {
    JsonNode *last = member (job, "last_cutover");
    if (!JSON_NODE_HOLDS_NULL (last))
      {
        JsonObject *c = as_object (last);
        JsonArray *barriers = as_array (member (c, "barriers"));
        g_assert_cmpstr (member_str (c, "id"), !=, "");
        member_str (c, "outgoing");
        member_str (c, "incoming");
        member_str (c, "result");
        member_str (c, "reason");
        g_assert_cmpint (member_int (c, "started_us"), >, 0);
        g_assert_cmpint (member_int (c, "duration_us"), >=, 0);
        for (guint i = 0; i < json_array_get_length (barriers); i++)
          {
            JsonObject *b = as_object (json_array_get_element (barriers, i));
            g_assert_cmpstr (member_str (b, "topic"), ==, BGT_FLEET_INPUT);
            g_assert_cmpint (member_int (b, "partition"), >=, 0);
            g_assert_cmpint (member_int (b, "offset"), >=, 0);
          }
      }
  }
  *job_out = job;
  return root;
}

static JsonObject *
slot_of (JsonObject *job, const char *color)
{
  return as_object (member (as_object (member (job, "slots")), color));
}

/* ---- the host ------------------------------------------------------------------ */

static gboolean
need_fleet (void)
{
  g_autoptr (GError) error = NULL;
  BgtFleetOptions opts;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root (bg-host)");
      return FALSE;
    }
  if (fleet_failed)
    {
      g_test_skip ("an earlier step of the story failed");
      return FALSE;
    }
  if (fleet != NULL)
    return TRUE;
  bgt_fleet_options_init (&opts);
  opts.n_hosts = 1;
  /* Long enough that the rollback at the end finds blue still running. */
  opts.observation_sec = 120;
  opts.deadline_sec = 5;
  fleet = bgt_fleet_new (&opts, &error);
  g_assert_no_error (error);
  return TRUE;
}

/* Until the agent has read the control log to its end it refuses slot
 * changes with Busy ("replaying"): tests that assert another answer wait
 * for its ControlLog property to say "following" first. */
static void
wait_agent_following (void)
{
  g_assert_true (bgt_fleet_wait_string (fleet, 0, "/org/bluegreen/Agent1", "org.bluegreen.Agent1",
                                        "ControlLog", "following", WAIT_MS));
}

/* ---- bad usage: no agent needed ---------------------------------------------------- */

static void
test_usage (void)
{
  /* The agent is never asked: arguments are checked first. An unreachable
   * bus makes sure of that (a bus error would be exit 3). */
  g_auto (GStrv) env = ctl_environ ("unix:path=/nonexistent/bus");
  struct {
    const char *args[8];
    const char *needle;
  } cases[] = {
    { { "frobnicate", NULL }, "unknown verb 'frobnicate'" },
    { { "sink", JOB, "purple", "live", NULL }, "'purple' is not a color" },
    { { "retire", JOB, "purple", NULL }, "'purple' is not a color" },
    { { "sink", JOB, "blue", "sideways", NULL }, "'sideways' is not a sink mode" },
    { { "deploy", JOB, "bad version!", NULL }, "'bad version!' is not a valid version" },
    { { "deploy", JOB, "-v1", NULL }, "Unknown option -v1" },
    { { "deploy", JOB, "v1", "--from=yesterday", NULL }, "--from must be scratch or savepoint, not 'yesterday'" },
    { { "deploy", JOB, NULL }, "usage: deploy JOB VERSION" },
    { { "status", "no/such", NULL }, "'no/such' is not a valid job name" },
    { { "status", "a", "b", NULL }, "status takes at most one job name" },
    { { "list", "extra", NULL }, "list takes no arguments" },
    { { "reload", "extra", NULL }, "reload takes no arguments" },
    { { "cutover", NULL }, "usage: cutover JOB" },
    { { "abort", NULL }, "usage: abort JOB" },
    { { "--frobnicate", NULL }, "--frobnicate" },
    { { "--system", "status", NULL }, "--user and --system exclude each other" },
    { { "--timeout=soon", "status", NULL }, "soon" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto (Run) r = { 0 };
      run_ctl_envv (&r, env, cases[i].args);
      expect_error (&r, EXIT_USAGE, cases[i].needle, NULL);
    }
}

static void
test_help (void)
{
  g_auto (Run) r = { 0 };
  g_auto (GStrv) env = ctl_environ (NULL);
  const char *args[] = { "--help", NULL };
  const char *verbs[] = { "status", "list", "deploy", "cutover", "rollback", "abort", "sink", "retire",
                          "hosts", "reload" };

  run_ctl_envv (&r, env, args);
  expect_status (&r, EXIT_OK);
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    {
      g_autofree char *line = g_strdup_printf ("\n  %s ", verbs[i]);
      g_assert_nonnull (strstr (r.out, line));
    }
  g_assert_nonnull (strstr (r.out, "Exit status: 0 ok, 1 failed, 2 bad usage, 3 agent not running"));
}

/* No agent: a bus that cannot be reached, and a bus without the agent's
 * name. Both exit 3 with the hint how to start it. */
static void
test_no_agent (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgtHost) bare = NULL;

  {
    g_auto (Run) r = { 0 };
    g_auto (GStrv) env = ctl_environ ("unix:path=/nonexistent/bus");
    const char *args[] = { "status", NULL };
    run_ctl_envv (&r, env, args);
    expect_error (&r, EXIT_NO_AGENT, "cannot connect to the session bus",
                  "start it with: systemctl --user start bluegreend", NULL);
  }
  if (geteuid () != 0)
    {
      g_test_skip ("a bus without the agent needs root (bg-host)");
      return;
    }
  bare = bgt_host_start ("ctl-bare", &error);
  g_assert_no_error (error);
  {
    const char *verbs[][4] = { { "status", NULL }, { "list", NULL }, { "deploy", JOB, "v1", NULL },
                               { "--json", "hosts", NULL }, { "reload", NULL } };
    g_auto (GStrv) env = ctl_environ (bare->bus_address);
    for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
      {
        g_auto (Run) r = { 0 };
        run_ctl_envv (&r, env, verbs[i]);
        expect_error (&r, EXIT_NO_AGENT, "the bluegreen agent is not running on the session bus",
                      "start it with: systemctl --user start bluegreend", NULL);
      }
  }
}

/* ---- the empty job -------------------------------------------------------------------- */

static void
test_unknown_job (void)
{
  const char *verbs[][6] = {
    { "status", "nosuchjob", NULL },
    { "hosts", "nosuchjob", NULL },
    { "deploy", "nosuchjob", "v1", NULL },
    { "cutover", "nosuchjob", NULL },
    { "rollback", "nosuchjob", NULL },
    { "abort", "nosuchjob", NULL },
    { "sink", "nosuchjob", "blue", "live", NULL },
    { "retire", "nosuchjob", "green", NULL },
    { "--json", "status", "nosuchjob", NULL },
  };

  if (!need_fleet ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    {
      g_auto (Run) r = { 0 };
      g_auto (GStrv) env = ctl_environ (host_bus ());
      run_ctl_envv (&r, env, verbs[i]);
      expect_error (&r, EXIT_NO_JOB, "nosuchjob", NULL);
    }
}

static void
test_status_empty (void)
{
  g_autoptr (JsonNode) root = NULL;
  JsonObject *job = NULL;

  if (!need_fleet ())
    return;
  {
    /* The default verb is status. */
    g_auto (Run) r = { 0 };
    g_autofree char *host_line = g_strdup_printf ("host %s, 1 job\n", bgt_fleet_host_id (fleet, 0));
    g_auto (GStrv) env = ctl_environ (host_bus ());
    const char *no_args[] = { NULL };
    run_ctl_envv (&r, env, no_args);
    expect_status (&r, EXIT_OK);
    g_assert_true (g_str_has_prefix (r.out, host_line));
    g_assert_nonnull (strstr (r.out, "● " JOB " — live: none, phase: empty\n"));
    g_assert_false (has_escape (r.out));
    g_assert_cmpstr (r.err, ==, "");
  }
  root = status_json (&job);
  g_assert_cmpstr (member_str (job, "phase"), ==, "empty");
  g_assert_cmpstr (member_str (job, "live_color"), ==, "");
  g_assert_true (JSON_NODE_HOLDS_NULL (member (job, "last_cutover")));
  g_assert_cmpstr (member_str (slot_of (job, "blue"), "state"), ==, "stopped");
  g_assert_cmpstr (member_str (slot_of (job, "green"), "state"), ==, "stopped");
  {
    g_auto (Run) r = { 0 };
    run_ctl (&r, "-q", "status", NULL);
    expect_status (&r, EXIT_OK);
    g_assert_cmpstr (r.out, ==, "");
  }
}

static void
test_list (void)
{
  if (!need_fleet ())
    return;
  {
    /* Piped: no header, one line per job. */
    g_auto (Run) r = { 0 };
    g_auto (GStrv) fields = NULL;
    run_ctl (&r, "list", NULL);
    expect_status (&r, EXIT_OK);
    fields = g_regex_split_simple ("\\s+", g_strstrip (r.out), 0, 0);
    g_assert_cmpuint (g_strv_length (fields), ==, 3);
    g_assert_cmpstr (fields[0], ==, JOB);
    g_assert_cmpstr (fields[1], ==, "-");
    g_assert_cmpstr (fields[2], ==, "empty");
  }
  {
    g_auto (Run) r = { 0 };
    g_autoptr (JsonNode) root = NULL;
    JsonArray *a;
    JsonObject *o;
    run_ctl (&r, "list", "--json", NULL);
    expect_status (&r, EXIT_OK);
    root = parse_json (r.out);
    a = as_array (root);
    g_assert_cmpuint (json_array_get_length (a), ==, 1);
    o = as_object (json_array_get_element (a, 0));
    g_assert_cmpuint (json_object_get_size (o), ==, 3);
    g_assert_cmpstr (member_str (o, "name"), ==, JOB);
    g_assert_cmpstr (member_str (o, "live_color"), ==, "");
    g_assert_cmpstr (member_str (o, "phase"), ==, "empty");
  }
  {
    g_auto (Run) r = { 0 };
    run_ctl (&r, "--quiet", "list", NULL);
    expect_status (&r, EXIT_OK);
    g_assert_cmpstr (r.out, ==, "");
  }
  {
    /* On a terminal: a bold header. */
    g_auto (Run) r = { 0 };
    run_ctl_tty (&r, NULL, "list");
    g_assert_cmpint (r.status, ==, EXIT_OK);
    g_assert_nonnull (strstr (r.out, "\033[1mJOB"));
  }
}

static void
test_reload (void)
{
  if (!need_fleet ())
    return;
  {
    g_auto (Run) r = { 0 };
    run_ctl (&r, "reload", NULL);
    expect_status (&r, EXIT_OK);
    g_assert_cmpstr (r.out, ==, "");
    g_assert_cmpstr (r.err, ==, "");
  }
  {
    g_auto (Run) r = { 0 };
    run_ctl (&r, "reload", "--json", NULL);
    expect_status (&r, EXIT_OK);
    expect_ok_json (&r, "reload", NULL, NULL);
  }
}

/* What each phase refuses, with the agent's reason on the error line. */
static void
test_wrong_state (void)
{
  const char *verbs[][6] = {
    { "cutover", JOB, NULL, "in phase 'empty'" },
    { "rollback", JOB, NULL, "in phase 'empty'" },
    { "abort", JOB, NULL, "in phase 'empty'" },
    { "sink", JOB, "blue", "live", NULL, "in phase 'empty'" },
    { "retire", JOB, "blue", NULL, "slot of job '" JOB "' is stopped" },
  };

  if (!need_fleet ())
    return;
  wait_agent_following ();
  for (guint i = 0; i < G_N_ELEMENTS (verbs); i++)
    {
      g_auto (Run) r = { 0 };
      g_auto (GStrv) env = ctl_environ (host_bus ());
      run_ctl_envv (&r, env, verbs[i]);
      const char *why = verbs[i][g_strv_length ((char **) verbs[i]) + 1];
      expect_error (&r, EXIT_FAILED, JOB, why, NULL);
      g_assert_null (strstr (r.err, "replaying"));
    }
}

/* ---- deploy ----------------------------------------------------------------------- */

/* The first deploy, once the agent follows the control log (before, it
 * answers Busy). */
static void
deploy_first (Run *r, const char *const *args)
{
  g_auto (GStrv) env = ctl_environ (host_bus ());

  wait_agent_following ();
  run_clear (r);
  run_ctl_envv (r, env, args);
}

static void
test_deploy_live (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;
  JsonObject *job = NULL, *blue;
  g_auto (Run) r = { 0 };
  const char *args[] = { "deploy", JOB, "v1", "--live", "--wait", "--timeout=60", NULL };

  if (!need_fleet ())
    return;
  bgt_fleet_load_start (fleet, 1000, &error);
  g_assert_no_error (error);
  deploy_first (&r, args);
  expect_status (&r, EXIT_OK);
  /* Not a terminal: periodic progress lines, then "ready". */
  g_assert_true (g_str_has_prefix (r.out, "deploying " JOB " version v1 (" BGT_FLEET_JOB_PATH "/blue)\n"));
  g_assert_cmpuint (count_lines (r.out, "catching up: lag "), >=, 1);
  g_assert_true (g_str_has_suffix (r.out, "\nready\n"));
  g_assert_null (strchr (r.out, '\r'));
  g_assert_false (has_escape (r.out));

  root = status_json (&job);
  g_assert_cmpstr (member_str (job, "live_color"), ==, "blue");
  g_assert_cmpstr (member_str (job, "phase"), ==, "live");
  blue = slot_of (job, "blue");
  g_assert_cmpstr (member_str (blue, "version"), ==, "v1");
  g_assert_cmpstr (member_str (blue, "state"), ==, "running");
  g_assert_cmpstr (member_str (blue, "activestate"), ==, "active");
  g_assert_cmpstr (member_str (blue, "sinkmode"), ==, "live");
  g_assert_cmpstr (member_str (blue, "unit"), ==, "bluegreen-" JOB "-blue.service");
  g_assert_true (member_bool (blue, "ready"));
  g_assert_cmpuint (json_array_get_length (as_array (member (blue, "positions"))), ==, 6);

  {
    /* A second live deploy is refused: a job has one first version. */
    g_auto (Run) r2 = { 0 };
    run_ctl (&r2, "deploy", JOB, "v1b", "--live", NULL);
    g_assert_cmpint (r2.status, !=, EXIT_OK);
    g_assert_true (g_str_has_prefix (r2.err, "error: "));
  }
}

static void
test_status_live (void)
{
  if (!need_fleet ())
    return;
  {
    g_auto (Run) r = { 0 };
    run_ctl (&r, "status", JOB, NULL);
    expect_status (&r, EXIT_OK);
    /* With a job named, no host line. */
    g_assert_true (g_str_has_prefix (r.out, "● " JOB " — live: blue, phase: live\n"));
    g_assert_nonnull (strstr (r.out, "COLOR  VERSION"));
    g_assert_true (g_regex_match_simple ("\\n    blue +v1 +active/running +live +[0-9]+ +yes +[0-9]+ +[0-9]+\\n",
                                         r.out, 0, 0));
    /* green is stopped and never ran: no line. */
    g_assert_null (strstr (r.out, "\n    green"));
    g_assert_false (has_escape (r.out));
  }
  {
    /* A terminal gets colour, unless --no-color or NO_COLOR. */
    g_auto (Run) tty = { 0 };
    g_auto (Run) nocolor = { 0 };
    g_auto (Run) envnocolor = { 0 };
    run_ctl_tty (&tty, NULL, "status " JOB);
    g_assert_cmpint (tty.status, ==, EXIT_OK);
    g_assert_nonnull (strstr (tty.out, "\033[1;34mblue"));
    run_ctl_tty (&nocolor, NULL, "--no-color status " JOB);
    g_assert_cmpint (nocolor.status, ==, EXIT_OK);
    g_assert_nonnull (strstr (nocolor.out, "blue"));
    g_assert_false (has_escape (nocolor.out));
    run_ctl_tty (&envnocolor, "NO_COLOR=1", "status " JOB);
    g_assert_cmpint (envnocolor.status, ==, EXIT_OK);
    g_assert_false (has_escape (envnocolor.out));
  }
}

/* hosts: this host announces itself with heartbeats; wait for it to be
 * listed (a heartbeat every 0.2 s). */
static gboolean
hosts_lists_us (gpointer data)
{
  Run *r = data;
  run_clear (r);
  run_ctl (r, "hosts", NULL);
  return r->status == EXIT_OK && g_str_has_suffix (r->out, " a\n");
}

static void
test_hosts (void)
{
  g_auto (Run) r = { 0 };

  if (!need_fleet ())
    return;
  g_assert_true (bgt_wait_until (hosts_lists_us, &r, WAIT_MS));
  g_assert_true (g_regex_match_simple ("^" JOB " +a\\n$", r.out, 0, 0));
  {
    g_auto (Run) j = { 0 };
    g_autoptr (JsonNode) root = NULL;
    JsonArray *a, *hosts;
    JsonObject *o;
    run_ctl (&j, "--json", "hosts", JOB, NULL);
    expect_status (&j, EXIT_OK);
    root = parse_json (j.out);
    a = as_array (root);
    g_assert_cmpuint (json_array_get_length (a), ==, 1);
    o = as_object (json_array_get_element (a, 0));
    g_assert_cmpstr (member_str (o, "job"), ==, JOB);
    hosts = as_array (member (o, "hosts"));
    g_assert_cmpuint (json_array_get_length (hosts), ==, 1);
    g_assert_cmpstr (json_array_get_string_element (hosts, 0), ==, "a");
  }
}

/* deploy v2 without waiting: returns at once with the slot's path. */
static void
test_deploy_blackholed (void)
{
  g_autoptr (JsonNode) root = NULL;
  JsonObject *job = NULL, *green;

  if (!need_fleet ())
    return;
  {
    g_auto (Run) r = { 0 };
    run_ctl (&r, "--json", "deploy", JOB, "v2", NULL);
    expect_status (&r, EXIT_OK);
    expect_ok_json (&r, "deploy", "slot", BGT_FLEET_JOB_PATH "/green");
  }
  root = status_json (&job);
  g_assert_cmpstr (member_str (job, "live_color"), ==, "blue");
  green = slot_of (job, "green");
  g_assert_cmpstr (member_str (green, "version"), ==, "v2");
  g_assert_cmpstr (member_str (green, "sinkmode"), !=, "live");
  {
    /* The live slot cannot be retired. */
    g_auto (Run) r = { 0 };
    run_ctl (&r, "retire", JOB, "blue", NULL);
    expect_error (&r, EXIT_FAILED, "blue", NULL);
  }
}

/* sink: a flip on this host to the mode a slot already has changes
 * nothing, so the exactness of the cutover later is not touched. */
static void
test_sink (void)
{
  g_autoptr (JsonNode) root = NULL;
  JsonObject *job = NULL;

  if (!need_fleet ())
    return;
  {
    g_auto (Run) r = { 0 };
    run_ctl (&r, "sink", JOB, "blue", "live", NULL);
    expect_status (&r, EXIT_OK);
    g_assert_cmpstr (r.out, ==, "");
  }
  {
    g_auto (Run) r = { 0 };
    run_ctl (&r, "--json", "sink", JOB, "green", "blackhole", NULL);
    expect_status (&r, EXIT_OK);
    expect_ok_json (&r, "sink", "mode", "blackhole");
  }
  root = status_json (&job);
  g_assert_cmpstr (member_str (job, "live_color"), ==, "blue");
  g_assert_cmpstr (member_str (slot_of (job, "blue"), "sinkmode"), ==, "live");
  g_assert_cmpstr (member_str (slot_of (job, "green"), "sinkmode"), ==, "blackhole");
}

static gboolean
green_stopped (gpointer data)
{
  g_autofree char *state = bgt_fleet_get_string (fleet, 0, BGT_FLEET_JOB_PATH "/green", BGT_SLOT_IFACE,
                                                 "State");
  return g_strcmp0 (state, "stopped") == 0;
}

/* retire green, then deploy it again and wait for it with progress. */
static void
test_retire_redeploy (void)
{
  if (!need_fleet ())
    return;
  {
    g_auto (Run) r = { 0 };
    run_ctl (&r, "--json", "retire", JOB, "green", NULL);
    expect_status (&r, EXIT_OK);
    expect_ok_json (&r, "retire", "color", "green");
  }
  g_assert_true (bgt_wait_until (green_stopped, NULL, WAIT_MS));
  {
    g_autoptr (JsonNode) root = NULL;
    JsonObject *job = NULL;
    root = status_json (&job);
    g_assert_cmpstr (member_str (job, "phase"), ==, "live");
  }
  {
    g_auto (Run) r = { 0 };
    run_ctl (&r, "deploy", JOB, "v2", "--from=scratch", "--wait", "--timeout=60", NULL);
    expect_status (&r, EXIT_OK);
    g_assert_true (g_str_has_prefix (r.out, "deploying " JOB " version v2 (" BGT_FLEET_JOB_PATH "/green)\n"));
    g_assert_cmpuint (count_lines (r.out, "catching up: lag "), >=, 1);
    g_assert_true (g_regex_match_simple ("^catching up: lag [0-9-]+, [0-9]+ rec/s, ETA [^,]+, ready (yes|no)$",
                                         strstr (r.out, "catching up:"), G_REGEX_MULTILINE, 0));
    g_assert_true (g_str_has_suffix (r.out, "\nready\n"));
  }
  {
    g_autoptr (JsonNode) root = NULL;
    JsonObject *job = NULL, *green;
    root = status_json (&job);
    g_assert_cmpstr (member_str (job, "phase"), ==, "ready");
    green = slot_of (job, "green");
    g_assert_cmpstr (member_str (green, "version"), ==, "v2");
    g_assert_cmpstr (member_str (green, "sinkmode"), ==, "blackhole");
    g_assert_true (member_bool (green, "ready"));
    g_assert_cmpint (member_int (green, "emitted"), ==, 0);
  }
  {
    /* Nothing to abort. */
    g_auto (Run) r = { 0 };
    run_ctl (&r, "abort", JOB, NULL);
    expect_error (&r, EXIT_FAILED, "'ready'", NULL);
  }
}

/* ---- the cutover, last ------------------------------------------------------------ */

static void
test_cutover (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;
  JsonObject *job = NULL, *last;
  JsonArray *barriers;
  g_autofree char *id = NULL;

  if (!need_fleet ())
    return;
  {
    g_auto (Run) r = { 0 };
    g_autoptr (GMatchInfo) m = NULL;
    g_autoptr (GRegex) re = g_regex_new ("^cutover (\\S+) started$", G_REGEX_MULTILINE, 0, NULL);
    run_ctl (&r, "cutover", JOB, "--wait", "--timeout=30", NULL);
    expect_status (&r, EXIT_OK);
    g_assert_true (g_regex_match (re, r.out, 0, &m));
    id = g_match_info_fetch (m, 1);
    {
      g_autofree char *done = g_strdup_printf ("\ncutover %s: done\n", id);
      g_assert_true (g_str_has_suffix (r.out, done));
    }
  }
  root = status_json (&job);
  g_assert_cmpstr (member_str (job, "live_color"), ==, "green");
  g_assert_cmpstr (member_str (job, "phase"), ==, "observing");
  last = as_object (member (job, "last_cutover"));
  g_assert_cmpstr (member_str (last, "id"), ==, id);
  g_assert_cmpstr (member_str (last, "outgoing"), ==, "blue");
  g_assert_cmpstr (member_str (last, "incoming"), ==, "green");
  g_assert_cmpstr (member_str (last, "result"), ==, "done");
  barriers = as_array (member (last, "barriers"));
  g_assert_cmpuint (json_array_get_length (barriers), ==, 6);
  {
    g_auto (Run) r = { 0 };
    run_ctl (&r, "status", NULL);
    expect_status (&r, EXIT_OK);
    g_assert_nonnull (strstr (r.out, "live: green, phase: observing"));
    g_assert_nonnull (strstr (r.out, "last cutover "));
    g_assert_nonnull (strstr (r.out, ": blue → green, done"));
    g_assert_cmpuint (count_lines (r.out, "    barriers: in/"), ==, 1);
  }
  {
    /* Exact: stop the load, let green drain it, verify the output. */
    g_autoptr (JsonObject) report = NULL;
    int status = -1;
    g_assert_cmpint (bgt_fleet_load_stop (fleet, &error), >, 0);
    g_assert_no_error (error);
    g_assert_true (bgt_fleet_wait_caught_up (fleet, 0, "green", WAIT_MS));
    report = bgt_fleet_verify (fleet, "blue", "green", NULL, &status, &error);
    g_assert_no_error (error);
    g_assert_cmpint (bgt_report_num (report, "gaps"), ==, 0);
    g_assert_cmpint (bgt_report_num (report, "cross_duplicates"), ==, 0);
    g_assert_cmpint (status, ==, 0);
  }
}

static void
test_rollback (void)
{
  g_autoptr (JsonNode) root = NULL;
  JsonObject *job = NULL;

  if (!need_fleet ())
    return;
  {
    /* --json --wait: one object with the id and the result. */
    g_auto (Run) r = { 0 };
    g_autoptr (JsonNode) out = NULL;
    JsonObject *o;
    run_ctl (&r, "--json", "rollback", JOB, "--wait", "--timeout=30", NULL);
    expect_status (&r, EXIT_OK);
    out = parse_json (r.out);
    o = as_object (out);
    g_assert_cmpstr (member_str (o, "id"), !=, "");
    g_assert_cmpstr (member_str (o, "result"), ==, "done");
  }
  root = status_json (&job);
  g_assert_cmpstr (member_str (job, "live_color"), ==, "blue");
  g_assert_cmpstr (member_str (as_object (member (job, "last_cutover")), "incoming"), ==, "blue");
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ctl/usage", test_usage);
  g_test_add_func ("/ctl/help", test_help);
  g_test_add_func ("/ctl/no-agent", test_no_agent);
  g_test_add_func ("/ctl/unknown-job", test_unknown_job);
  g_test_add_func ("/ctl/status-empty", test_status_empty);
  g_test_add_func ("/ctl/list", test_list);
  g_test_add_func ("/ctl/reload", test_reload);
  g_test_add_func ("/ctl/wrong-state", test_wrong_state);
  g_test_add_func ("/ctl/deploy-live", test_deploy_live);
  g_test_add_func ("/ctl/status-live", test_status_live);
  g_test_add_func ("/ctl/hosts", test_hosts);
  g_test_add_func ("/ctl/deploy-blackholed", test_deploy_blackholed);
  g_test_add_func ("/ctl/sink", test_sink);
  g_test_add_func ("/ctl/retire-redeploy", test_retire_redeploy);
  g_test_add_func ("/ctl/cutover", test_cutover);
  g_test_add_func ("/ctl/rollback", test_rollback);
  rc = g_test_run ();
  g_clear_pointer (&fleet, bgt_fleet_free);
  return rc;
}
