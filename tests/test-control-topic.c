/* test-control-topic.c — the verdict of the agent's control topic check
 * (src/daemon/control-topic.c) on the facts Kafka reports: what stops the
 * agent (missing, several partitions, compacted), what is a warning (weak
 * replication, min.insync.replicas, short retention, unreadable
 * configuration), and that a topic made as documented passes silently.
 * The facts themselves are gathered from a real cluster in
 * tests/test-real-kafka.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "daemon/control-topic.h"

#define TOPIC "ops.control"

static void
good_facts (BgdControlTopicFacts *f)
{
  bgd_control_topic_facts_clear (f);
  memset (f, 0, sizeof *f);
  f->exists = TRUE;
  f->partitions = 1;
  f->replication = 3;
  f->cleanup_policy = g_strdup ("delete");
  f->min_insync_replicas = 2;
  f->retention_ms = BGD_CONTROL_TOPIC_MIN_RETENTION_MS;
  f->retention_known = TRUE;
}

static void
assert_refused (const BgdControlTopicFacts *f, int code, const char *mentions)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (bgd_control_topic_assess (TOPIC, f, NULL, &error));
  g_assert_error (error, BGD_CONTROL_TOPIC_ERROR, code);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "'" TOPIC "'"));
  g_assert_nonnull (strstr (error->message, mentions));
}

static GPtrArray *
warnings_for (const BgdControlTopicFacts *f)
{
  g_autoptr (GError) error = NULL;
  GPtrArray *w = g_ptr_array_new_with_free_func (g_free);

  g_assert_true (bgd_control_topic_assess (TOPIC, f, w, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < w->len; i++)
    g_test_message ("warning: %s", (char *) g_ptr_array_index (w, i));
  return w;
}

static void
test_good (void)
{
  g_auto (BgdControlTopicFacts) f = { 0 };
  g_autoptr (GPtrArray) w = NULL;

  good_facts (&f);
  w = warnings_for (&f);
  g_assert_cmpuint (w->len, ==, 0);
  /* Unlimited retention is fine too. */
  f.retention_ms = -1;
  g_clear_pointer (&w, g_ptr_array_unref);
  w = warnings_for (&f);
  g_assert_cmpuint (w->len, ==, 0);
}

static void
test_refused (void)
{
  g_auto (BgdControlTopicFacts) f = { 0 };

  good_facts (&f);
  f.exists = FALSE;
  assert_refused (&f, BGD_CONTROL_TOPIC_ERROR_MISSING, "does not exist");
  good_facts (&f);
  f.partitions = 2;
  assert_refused (&f, BGD_CONTROL_TOPIC_ERROR_PARTITIONS, "2 partitions");
  good_facts (&f);
  g_free (f.cleanup_policy);
  f.cleanup_policy = g_strdup ("compact");
  assert_refused (&f, BGD_CONTROL_TOPIC_ERROR_COMPACTED, "cleanup.policy=compact");
  g_free (f.cleanup_policy);
  f.cleanup_policy = g_strdup ("delete, compact");
  assert_refused (&f, BGD_CONTROL_TOPIC_ERROR_COMPACTED, "compact");
}

static void
test_warnings (void)
{
  g_auto (BgdControlTopicFacts) f = { 0 };
  g_autoptr (GPtrArray) w = NULL;

  good_facts (&f);
  f.replication = 1;
  f.min_insync_replicas = 1;
  f.retention_ms = 3600 * 1000;
  w = warnings_for (&f);
  g_assert_cmpuint (w->len, ==, 3);
  g_assert_nonnull (strstr (g_ptr_array_index (w, 0), "replication factor 1"));
  g_assert_nonnull (strstr (g_ptr_array_index (w, 1), "min.insync.replicas=1"));
  g_assert_nonnull (strstr (g_ptr_array_index (w, 2), "retention.ms=3600000"));

  /* A broker that cannot describe configurations: only what is known. */
  good_facts (&f);
  g_clear_pointer (&f.cleanup_policy, g_free);
  f.min_insync_replicas = -1;
  f.retention_known = FALSE;
  f.config_error = g_strdup ("DescribeConfigs: unsupported");
  g_clear_pointer (&w, g_ptr_array_unref);
  w = warnings_for (&f);
  g_assert_cmpuint (w->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (w, 0), "cleanup.policy not checked"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/control-topic/good", test_good);
  g_test_add_func ("/control-topic/refused", test_refused);
  g_test_add_func ("/control-topic/warnings", test_warnings);
  return g_test_run ();
}
