/* control.c — see control.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "example/control.h"

#include "common/names.h"

#include <stdarg.h>
#include <string.h>

G_DEFINE_QUARK (bg-control-error-quark, bg_control_error)

static void
clear_barrier (gpointer p)
{
  BgControlBarrier *b = p;
  g_free (b->topic);
}

void
bg_control_command_free (BgControlCommand *cmd)
{
  if (cmd == NULL)
    return;
  g_free (cmd->id);
  if (cmd->barriers != NULL)
    g_array_unref (cmd->barriers);
  g_free (cmd);
}

const char *
bg_control_verb_to_string (BgControlVerb verb)
{
  switch (verb)
    {
    case BG_CONTROL_PREPARE: return "prepare";
    case BG_CONTROL_COMMIT: return "commit";
    case BG_CONTROL_ABORT: return "abort";
    case BG_CONTROL_MODE: return "mode";
    case BG_CONTROL_SAVEPOINT: return "savepoint";
    case BG_CONTROL_FLUSH: return "flush";
    }
  return "?";
}

static gboolean syntax (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
syntax (GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, BG_CONTROL_ERROR, BG_CONTROL_ERROR_SYNTAX, msg);
  return FALSE;
}

static gboolean
parse_int64 (const char *s, int64_t min, int64_t max, int64_t *out)
{
  gint64 v;
  if (!g_ascii_string_to_signed (s, 10, min, max, &v, NULL))
    return FALSE;
  *out = v;
  return TRUE;
}

/* TOPIC:PARTITION:OFFSET, split from the right: Kafka topic names cannot
 * contain ':', but being lenient costs nothing. */
static gboolean
parse_barrier (const char *s, BgControlBarrier *out)
{
  const char *c2 = strrchr (s, ':');
  if (c2 == NULL || c2 == s)
    return FALSE;
  const char *c1 = g_strrstr_len (s, c2 - s, ":");
  if (c1 == NULL || c1 == s)
    return FALSE;
  g_autofree char *part = g_strndup (c1 + 1, c2 - c1 - 1);
  int64_t p, off;
  if (!parse_int64 (part, 0, 65535, &p) || !parse_int64 (c2 + 1, 0, G_MAXINT64, &off))
    return FALSE;
  out->topic = g_strndup (s, c1 - s);
  out->partition = (int32_t) p;
  out->offset = off;
  return TRUE;
}

BgControlCommand *
bg_control_parse_line (const char *line, GError **error)
{
  g_auto (GStrv) words = g_strsplit_set (line, " \t\r", -1);
  g_autoptr (GPtrArray) w = g_ptr_array_new ();
  for (char **p = words; *p != NULL; p++)
    if (**p != '\0')
      g_ptr_array_add (w, *p);
  if (w->len == 0)
    return syntax (error, "empty command"), NULL;

  g_autoptr (BgControlCommand) cmd = g_new0 (BgControlCommand, 1);
  const char *verb = w->pdata[0];
  guint want_args;
  if (g_str_equal (verb, "prepare"))
    {
      cmd->verb = BG_CONTROL_PREPARE;
      if (w->len < 5)
        return syntax (error, "%s: needs ID ROLE DEADLINE_US and barriers", verb), NULL;
      const char *role = w->pdata[2];
      if (g_str_equal (role, "outgoing"))
        cmd->role = BG_PLAN_ROLE_OUTGOING;
      else if (g_str_equal (role, "incoming"))
        cmd->role = BG_PLAN_ROLE_INCOMING;
      else
        return syntax (error, "prepare: unknown role '%s'", role), NULL;
      if (!parse_int64 (w->pdata[3], 0, G_MAXINT64, &cmd->deadline_us))
        return syntax (error, "prepare: bad deadline '%s'", (const char *) w->pdata[3]), NULL;
      cmd->barriers = g_array_new (FALSE, TRUE, sizeof (BgControlBarrier));
      g_array_set_clear_func (cmd->barriers, clear_barrier);
      for (guint i = 4; i < w->len; i++)
        {
          BgControlBarrier b;
          if (!parse_barrier (w->pdata[i], &b))
            return syntax (error, "prepare: bad barrier '%s' (want TOPIC:PARTITION:OFFSET)",
                           (const char *) w->pdata[i]), NULL;
          g_array_append_val (cmd->barriers, b);
        }
      want_args = w->len - 1;
    }
  else if (g_str_equal (verb, "commit") || g_str_equal (verb, "abort"))
    {
      cmd->verb = g_str_equal (verb, "commit") ? BG_CONTROL_COMMIT : BG_CONTROL_ABORT;
      want_args = 1;
    }
  else if (g_str_equal (verb, "mode"))
    {
      cmd->verb = BG_CONTROL_MODE;
      want_args = 1;
      if (w->len == 2)
        {
          const char *m = w->pdata[1];
          if (g_str_equal (m, "live"))
            cmd->mode = BG_SINK_MODE_LIVE;
          else if (g_str_equal (m, "blackhole"))
            cmd->mode = BG_SINK_MODE_BLACKHOLE;
          else if (g_str_equal (m, "unknown"))
            cmd->mode = BG_SINK_MODE_UNKNOWN;
          else
            return syntax (error, "mode: unknown mode '%s'", m), NULL;
        }
    }
  else if (g_str_equal (verb, "savepoint"))
    {
      cmd->verb = BG_CONTROL_SAVEPOINT;
      want_args = 0;
    }
  else if (g_str_equal (verb, "flush"))
    {
      cmd->verb = BG_CONTROL_FLUSH;
      want_args = 0;
    }
  else
    return syntax (error, "unknown command '%s'", verb), NULL;

  if (w->len - 1 != want_args)
    return syntax (error, "%s: wrong number of arguments", verb), NULL;
  if (cmd->verb == BG_CONTROL_PREPARE || cmd->verb == BG_CONTROL_COMMIT
      || cmd->verb == BG_CONTROL_ABORT)
    {
      if (!bg_id_is_valid (w->pdata[1]))
        return syntax (error, "invalid cutover id '%s'", (const char *) w->pdata[1]), NULL;
      cmd->id = g_strdup (w->pdata[1]);
    }
  return g_steal_pointer (&cmd);
}

BgPlan *
bg_control_command_to_plan (const BgControlCommand *cmd)
{
  g_return_val_if_fail (cmd->verb == BG_CONTROL_PREPARE, NULL);
  BgPlan *plan = bg_plan_new (cmd->id, cmd->role, cmd->deadline_us);
  for (guint i = 0; i < cmd->barriers->len; i++)
    {
      const BgControlBarrier *b = &g_array_index (cmd->barriers, BgControlBarrier, i);
      bg_plan_add_barrier (plan, b->topic, b->partition, b->offset);
    }
  return plan;
}
