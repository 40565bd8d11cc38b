/* kafka-mock.c — bluegreen-kafka-mock: an embedded Kafka for the demo and
 * the tests.
 *
 * Runs librdkafka's mock cluster (a real Kafka-protocol server on loopback)
 * with N brokers, creates topics, announces the bootstrap servers on stdout
 * and in a file, and takes fault-injection commands (mock-command.h) on
 * stdin and on a FIFO, answering each with "ok" or "error: ..." on stdout so
 * a test can synchronise on the reply. Everything runs in one GMainLoop; the
 * mock's own threads serve Kafka clients.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rig/mock-command.h"

#define EXIT_USAGE 2

typedef struct _Mock Mock;

/* One line-oriented command input: stdin or the control FIFO. */
typedef struct {
  Mock *mock;
  const char *what;
  char *path; /* FIFO path; NULL for stdin */
  int fd;
  int keep_writer_fd; /* FIFO only: our own writer, so readers never see EOF */
  guint source_id;
  GString *pending; /* bytes of an unfinished line */
} CommandInput;

struct _Mock {
  GMainLoop *loop;
  rd_kafka_t *rk;
  rd_kafka_mock_cluster_t *mcluster;
  int n_brokers;
  int replication;
  CommandInput stdin_input;
  CommandInput fifo_input;
  gboolean created_fifo;
  char *bootstrap_file;
};

static void
reply (const char *fmt, ...) G_GNUC_PRINTF (1, 2);

static void
reply (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vfprintf (stdout, fmt, ap);
  va_end (ap);
  fputc ('\n', stdout);
  fflush (stdout);
}

static gboolean
create_topic (Mock *mock, const char *name, int partitions, GError **error)
{
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create (mock->mcluster, name, partitions, mock->replication);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "topic %s: %s", name, rd_kafka_err2str (err));
      return FALSE;
    }
  g_info ("created topic %s with %d partitions, replication %d", name, partitions, mock->replication);
  return TRUE;
}

static rd_kafka_resp_err_t
execute_on_brokers (Mock *mock, const BgMockCommand *cmd)
{
  switch (cmd->verb)
    {
    case BG_MOCK_VERB_DOWN:
      return rd_kafka_mock_broker_set_down (mock->mcluster, cmd->broker);
    case BG_MOCK_VERB_UP:
      return rd_kafka_mock_broker_set_up (mock->mcluster, cmd->broker);
    case BG_MOCK_VERB_RTT:
      return rd_kafka_mock_broker_set_rtt (mock->mcluster, cmd->broker, cmd->rtt_ms);
    default:
      g_assert_not_reached ();
    }
}

/* Returns FALSE when the command asks to quit. */
static gboolean
execute_line (Mock *mock, const char *line)
{
  g_auto (BgMockCommand) cmd = { 0 };
  g_autoptr (GError) error = NULL;

  if (!bg_mock_command_parse (line, mock->n_brokers, &cmd, &error))
    {
      g_info ("rejected command '%s': %s", line, error->message);
      reply ("error: %s", error->message);
      return TRUE;
    }

  switch (cmd.verb)
    {
    case BG_MOCK_VERB_NONE:
      return TRUE;
    case BG_MOCK_VERB_DOWN:
    case BG_MOCK_VERB_UP:
    case BG_MOCK_VERB_RTT:
      {
        rd_kafka_resp_err_t err = execute_on_brokers (mock, &cmd);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
          reply ("error: %s", rd_kafka_err2str (err));
        else
          reply ("ok");
        return TRUE;
      }
    case BG_MOCK_VERB_ERRORS:
      {
        g_autofree rd_kafka_resp_err_t *errs = g_new (rd_kafka_resp_err_t, cmd.count);
        for (int i = 0; i < cmd.count; i++)
          errs[i] = (rd_kafka_resp_err_t) cmd.error_code;
        rd_kafka_mock_push_request_errors_array (mock->mcluster, (int16_t) cmd.api_key, (size_t) cmd.count, errs);
        reply ("ok");
        return TRUE;
      }
    case BG_MOCK_VERB_TOPIC:
      if (!create_topic (mock, cmd.topic, cmd.partitions, &error))
        reply ("error: %s", error->message);
      else
        reply ("ok");
      return TRUE;
    case BG_MOCK_VERB_LEADER:
      {
        rd_kafka_resp_err_t err
          = rd_kafka_mock_partition_set_leader (mock->mcluster, cmd.topic, cmd.partition, cmd.broker);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
          reply ("error: leader %s [%d]: %s", cmd.topic, cmd.partition, rd_kafka_err2str (err));
        else
          reply ("ok");
        return TRUE;
      }
    case BG_MOCK_VERB_QUIT:
      reply ("ok");
      return FALSE;
    }
  g_assert_not_reached ();
}

static gboolean on_input (int fd, GIOCondition condition, gpointer user_data);

static gboolean
open_fifo (Mock *mock, GError **error)
{
  CommandInput *in = &mock->fifo_input;
  /* Non-blocking open: a FIFO without writers would block a plain open. */
  in->fd = g_open (in->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
  if (in->fd < 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "--control: cannot open %s: %s",
                   in->path, g_strerror (saved));
      return FALSE;
    }
  /* Holding a writer ourselves means the FIFO never reports EOF/HUP between
   * two external writers, so poll() does not spin and commands sent by
   * successive writers are all read. */
  if (in->keep_writer_fd < 0)
    in->keep_writer_fd = g_open (in->path, O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0);
  in->source_id = g_unix_fd_add (in->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_input, in);
  return TRUE;
}

static void
close_input (CommandInput *in)
{
  g_clear_handle_id (&in->source_id, g_source_remove);
  if (in->path != NULL && in->fd >= 0)
    close (in->fd);
  in->fd = -1;
  g_string_truncate (in->pending, 0);
}

static gboolean
on_input (int fd, GIOCondition condition, gpointer user_data)
{
  CommandInput *in = user_data;
  Mock *mock = in->mock;
  char buf[4096];

  ssize_t n = read (fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return G_SOURCE_CONTINUE;
  if (n <= 0)
    {
      /* EOF on stdin is normal (stdin may be /dev/null): stop reading it but
       * keep serving. EOF on the FIFO: reopen, so later writers are heard. */
      g_debug ("%s: end of input", in->what);
      in->source_id = 0;
      close_input (in);
      if (in->path != NULL)
        {
          g_autoptr (GError) error = NULL;
          if (!open_fifo (mock, &error))
            g_printerr ("error: %s\n", error->message);
        }
      return G_SOURCE_REMOVE;
    }

  g_string_append_len (in->pending, buf, n);
  char *nl;
  while ((nl = memchr (in->pending->str, '\n', in->pending->len)) != NULL)
    {
      g_autofree char *line = g_strndup (in->pending->str, nl - in->pending->str);
      g_string_erase (in->pending, 0, nl - in->pending->str + 1);
      g_debug ("%s: command '%s'", in->what, line);
      if (!execute_line (mock, line))
        {
          g_main_loop_quit (mock->loop);
          break;
        }
    }
  /* A line longer than any command is garbage; do not let it grow forever. */
  if (in->pending->len > 65536)
    {
      g_string_truncate (in->pending, 0);
      reply ("error: line too long");
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_signal (gpointer user_data)
{
  Mock *mock = user_data;
  g_info ("signal received, stopping");
  g_main_loop_quit (mock->loop);
  return G_SOURCE_CONTINUE;
}

static void
log_cb (const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  g_debug ("rdkafka %d %s: %s", level, fac, buf);
}

static gboolean
prepare_fifo (Mock *mock, GError **error)
{
  GStatBuf st;
  if (g_stat (mock->fifo_input.path, &st) == 0)
    {
      if (!S_ISFIFO (st.st_mode))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "--control: %s exists and is not a FIFO",
                       mock->fifo_input.path);
          return FALSE;
        }
    }
  else if (mkfifo (mock->fifo_input.path, 0600) < 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "--control: cannot create %s: %s",
                   mock->fifo_input.path, g_strerror (saved));
      return FALSE;
    }
  else
    mock->created_fifo = TRUE;
  return open_fifo (mock, error);
}

static gboolean
start_cluster (Mock *mock, GError **error)
{
  char errstr[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new ();
  rd_kafka_conf_set_log_cb (conf, log_cb);
  /* The handle only hosts the mock; it talks to no cluster of its own. */
  if (rd_kafka_conf_set (conf, "client.id", "bluegreen-kafka-mock", errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
    {
      rd_kafka_conf_destroy (conf);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", errstr);
      return FALSE;
    }
  mock->rk = rd_kafka_new (RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (mock->rk == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot create a Kafka handle: %s", errstr);
      return FALSE;
    }
  mock->mcluster = rd_kafka_mock_cluster_new (mock->rk, mock->n_brokers);
  if (mock->mcluster == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot start the mock cluster");
      return FALSE;
    }
  return TRUE;
}

static gboolean
announce_bootstrap (Mock *mock, GError **error)
{
  const char *bootstraps = rd_kafka_mock_cluster_bootstraps (mock->mcluster);
  fprintf (stdout, "%s\n", bootstraps);
  fflush (stdout);
  if (mock->bootstrap_file == NULL)
    return TRUE;
  /* g_file_set_contents writes a temporary file and renames it over the
   * target: a waiter polling for the file never reads half of it. */
  g_autofree char *contents = g_strdup_printf ("%s\n", bootstraps);
  if (!g_file_set_contents (mock->bootstrap_file, contents, -1, error))
    {
      g_prefix_error (error, "--bootstrap-file: ");
      return FALSE;
    }
  return TRUE;
}

static void
mock_shutdown (Mock *mock)
{
  close_input (&mock->stdin_input);
  close_input (&mock->fifo_input);
  if (mock->fifo_input.keep_writer_fd >= 0)
    close (mock->fifo_input.keep_writer_fd);
  if (mock->created_fifo)
    g_unlink (mock->fifo_input.path);
  /* A stale bootstrap file would send the next waiter to a dead port. */
  if (mock->bootstrap_file != NULL)
    g_unlink (mock->bootstrap_file);
  g_clear_pointer (&mock->mcluster, rd_kafka_mock_cluster_destroy);
  g_clear_pointer (&mock->rk, rd_kafka_destroy);
  g_string_free (mock->stdin_input.pending, TRUE);
  g_string_free (mock->fifo_input.pending, TRUE);
  g_free (mock->fifo_input.path);
  g_free (mock->bootstrap_file);
  g_clear_pointer (&mock->loop, g_main_loop_unref);
}

static int
usage_error (const char *fmt, ...) G_GNUC_PRINTF (1, 2);

static int
usage_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_printerr ("error: %s\n", msg);
  return EXIT_USAGE;
}

/* A caller may start us with stdin/stdout/stderr closed; then the first
 * descriptors we open (GLib's wakeup eventfd, the FIFO) would take those
 * numbers and be read as commands or written with replies. */
static void
ensure_standard_fds (void)
{
  for (int fd = 0; fd <= 2; fd++)
    if (fcntl (fd, F_GETFD) < 0)
      {
        int null_fd = open ("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (null_fd >= 0 && null_fd != fd)
          close (null_fd); /* cannot happen: open returns the lowest free fd */
      }
}

int
main (int argc, char **argv)
{
  ensure_standard_fds ();

  int n_brokers = 3;
  int replication = 0;
  g_auto (GStrv) topic_specs = NULL;
  g_autofree char *bootstrap_file = NULL;
  g_autofree char *control = NULL;
  gboolean verbose = FALSE;
  GOptionEntry entries[] = {
    { "brokers", 'b', 0, G_OPTION_ARG_INT, &n_brokers, "Number of brokers, numbered 1..N (default 3)", "N" },
    { "topic", 't', 0, G_OPTION_ARG_STRING_ARRAY, &topic_specs, "Create a topic (repeatable)", "NAME:PARTITIONS" },
    { "replication", 'r', 0, G_OPTION_ARG_INT, &replication,
      "Replication factor of created topics, 1..N (default min(3, N))", "R" },
    { "bootstrap-file", 'f', 0, G_OPTION_ARG_FILENAME, &bootstrap_file,
      "Also write the bootstrap servers to PATH (atomically; removed on exit)", "PATH" },
    { "control", 'c', 0, G_OPTION_ARG_FILENAME, &control,
      "Read commands from the FIFO at PATH too (created if missing)", "PATH" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log commands and librdkafka events to stderr", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- an embedded Kafka for tests and demos");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_summary (
    context,
    "Runs librdkafka's mock cluster on 127.0.0.1 and prints its bootstrap servers\n"
    "(one line) on stdout. Commands, one per line, on stdin and on --control:\n"
    "  down BROKER | up BROKER          disconnect / reconnect a broker (or 'all')\n"
    "  rtt BROKER MS                    add round-trip latency to a broker\n"
    "  errors APIKEY ERRCODE COUNT      fail the next COUNT requests of an API\n"
    "                                   (Produce, Fetch, Metadata, ... or a number)\n"
    "                                   with an error (name or number)\n"
    "  topic NAME:PARTITIONS            create a topic\n"
    "  leader TOPIC PARTITION BROKER    move a partition's leadership\n"
    "  quit                             exit\n"
    "Each command is answered with 'ok' or 'error: ...' on stdout.\n"
    "\n"
    "The mock keeps only the last 100,000 messages or 5 MB per partition;\n"
    "older records are dropped silently and the low watermark moves.\n"
    "Topics that clients use without creating them are auto-created with\n"
    "the mock's defaults. Exits 0 on quit, SIGTERM or SIGINT; EOF on stdin does\n"
    "not stop it. Bad arguments: exit status 2.");

  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage_error ("%s", error->message);
  if (argc > 1)
    return usage_error ("unexpected argument '%s'", argv[1]);
  if (n_brokers < 1 || n_brokers > 64)
    return usage_error ("--brokers: %d is not in 1..64", n_brokers);
  if (replication == 0)
    replication = MIN (3, n_brokers);
  if (replication < 1 || replication > n_brokers)
    return usage_error ("--replication: %d is not in 1..%d (the number of brokers)", replication, n_brokers);

  /* Validate every topic before anything starts. */
  g_autoptr (GPtrArray) topic_names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) topic_partitions = g_array_new (FALSE, FALSE, sizeof (int));
  for (char **spec = topic_specs; spec != NULL && *spec != NULL; spec++)
    {
      char *name;
      int partitions;
      if (!bg_mock_parse_topic_spec (*spec, &name, &partitions, &error))
        return usage_error ("--topic: %s", error->message);
      g_ptr_array_add (topic_names, name);
      g_array_append_val (topic_partitions, partitions);
    }

  /* stdout carries the program's output (bootstrap line and replies, or
   * the summary); GLib would log info and debug there too. */
  g_log_writer_default_set_use_stderr (TRUE);
  if (verbose)
    g_log_set_debug_enabled (TRUE);
  /* A test that stops reading replies must not kill the broker. */
  signal (SIGPIPE, SIG_IGN);

  Mock mock = {
    .n_brokers = n_brokers,
    .replication = replication,
    .stdin_input = { .what = "stdin", .fd = STDIN_FILENO, .keep_writer_fd = -1, .pending = g_string_new (NULL) },
    .fifo_input = { .what = "control", .path = g_steal_pointer (&control), .fd = -1, .keep_writer_fd = -1,
                    .pending = g_string_new (NULL) },
    .bootstrap_file = g_steal_pointer (&bootstrap_file),
    .loop = g_main_loop_new (NULL, FALSE),
  };

  mock.stdin_input.mock = mock.fifo_input.mock = &mock;

  int status = EXIT_SUCCESS;
  if (!start_cluster (&mock, &error))
    {
      g_printerr ("error: %s\n", error->message);
      status = EXIT_FAILURE;
      goto out;
    }
  for (guint i = 0; i < topic_names->len; i++)
    if (!create_topic (&mock, g_ptr_array_index (topic_names, i), g_array_index (topic_partitions, int, i), &error))
      {
        g_printerr ("error: --topic: %s\n", error->message);
        status = EXIT_FAILURE;
        goto out;
      }
  if (mock.fifo_input.path != NULL && !prepare_fifo (&mock, &error))
    {
      g_printerr ("error: %s\n", error->message);
      status = EXIT_USAGE;
      goto out;
    }

  g_unix_signal_add (SIGTERM, on_signal, &mock);
  g_unix_signal_add (SIGINT, on_signal, &mock);
  mock.stdin_input.source_id
    = g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR, on_input, &mock.stdin_input);

  /* Announce last: whoever reads the bootstrap line may use the topics and
   * the control FIFO at once. */
  if (!announce_bootstrap (&mock, &error))
    {
      g_printerr ("error: %s\n", error->message);
      status = EXIT_FAILURE;
      goto out;
    }

  g_main_loop_run (mock.loop);

out:
  mock_shutdown (&mock);
  return status;
}
