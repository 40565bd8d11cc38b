/* state-file.c — the agent's persistent record of live colors, versions
 * and sink modes (see state-file.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "daemon/state-file.h"


#define JOB_GROUP_PREFIX "Job "

static const char *const slot_key_prefix[BG_N_COLORS] = { "Blue", "Green" };

void
bgd_job_record_free (BgdJobRecord *record)
{
  if (record == NULL)
    return;
  g_free (record->name);
  g_free (record->last_cutover);
  g_free (record->fleet_committed);
  g_free (record->live_color);
  for (guint c = 0; c < BG_N_COLORS; c++)
    {
      g_free (record->slots[c].version);
      g_free (record->slots[c].sink_mode);
      g_free (record->slots[c].steering);
      g_free (record->slots[c].state);
    }
  g_strfreev (record->members);
  g_free (record->observing_color);
  g_free (record);
}

BgdJobRecord *
bgd_job_record_copy (const BgdJobRecord *old)
{
  BgdJobRecord *copy = g_new0 (BgdJobRecord, 1);

  copy->name = g_strdup (old->name);
  copy->live_color = g_strdup (old->live_color);
  copy->control_offset = old->control_offset;
  copy->last_cutover = g_strdup (old->last_cutover);
  copy->fleet_committed = g_strdup (old->fleet_committed);
  for (guint c = 0; c < BG_N_COLORS; c++)
    {
      copy->slots[c].version = g_strdup (old->slots[c].version);
      copy->slots[c].sink_mode = g_strdup (old->slots[c].sink_mode);
      copy->slots[c].generation = old->slots[c].generation;
      copy->slots[c].steering = g_strdup (old->slots[c].steering);
      copy->slots[c].state = g_strdup (old->slots[c].state);
    }
  copy->members = g_strdupv (old->members);
  copy->observing_color = g_strdup (old->observing_color);
  copy->observing_since = old->observing_since;
  return copy;
}

static char *
get_string_or_null (GKeyFile *kf, const char *group, const char *key)
{
  g_autofree char *v = g_key_file_get_string (kf, group, key, NULL);

  if (v == NULL || *v == '\0')
    return NULL;
  return g_steal_pointer (&v);
}

GHashTable *
bgd_state_file_load (const char *path, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GHashTable) table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                        (GDestroyNotify) bgd_job_record_free);
  g_autoptr(GError) local_error = NULL;
  g_auto(GStrv) groups = NULL;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local_error))
    {
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return g_steal_pointer (&table);
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                  "%s: ", path);
      return NULL;
    }

  groups = g_key_file_get_groups (kf, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      const char *group = groups[i];
      BgdJobRecord *r;

      if (!g_str_has_prefix (group, JOB_GROUP_PREFIX))
        continue;
      r = g_new0 (BgdJobRecord, 1);
      r->name = g_strdup (group + strlen (JOB_GROUP_PREFIX));
      r->live_color = get_string_or_null (kf, group, "LiveColor");
      if (r->live_color == NULL)
        r->live_color = g_strdup ("");
      r->last_cutover = get_string_or_null (kf, group, "LastCutover");
      r->fleet_committed = get_string_or_null (kf, group, "FleetCommitted");
      {
        g_autoptr(GError) offset_error = NULL;
        r->control_offset = g_key_file_get_int64 (kf, group, "ControlOffset", &offset_error);
        if (offset_error != NULL || r->control_offset < 0)
          r->control_offset = -1;
      }
      for (guint c = 0; c < BG_N_COLORS; c++)
        {
          g_autofree char *kv = g_strdup_printf ("%sVersion", slot_key_prefix[c]);
          g_autofree char *km = g_strdup_printf ("%sSinkMode", slot_key_prefix[c]);
          g_autofree char *kg = g_strdup_printf ("%sGeneration", slot_key_prefix[c]);
          g_autofree char *ks = g_strdup_printf ("%sSteering", slot_key_prefix[c]);
          g_autofree char *kt = g_strdup_printf ("%sState", slot_key_prefix[c]);

          r->slots[c].steering = get_string_or_null (kf, group, ks);
          r->slots[c].state = get_string_or_null (kf, group, kt);
          r->slots[c].version = get_string_or_null (kf, group, kv);
          r->slots[c].sink_mode = get_string_or_null (kf, group, km);
          r->slots[c].generation = g_key_file_get_uint64 (kf, group, kg, NULL);
        }
      r->members = g_key_file_get_string_list (kf, group, "Members", NULL, NULL);
      r->observing_color = get_string_or_null (kf, group, "ObservingColor");
      r->observing_since = g_key_file_get_int64 (kf, group, "ObservingSince", NULL);
      g_hash_table_replace (table, r->name, r);
    }
  return g_steal_pointer (&table);
}

gint64
bgd_state_file_load_control_offset (const char *path)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) error = NULL;
  gint64 v;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL))
    return -1;
  v = g_key_file_get_int64 (kf, "Control", "NextOffset", &error);
  return error != NULL ? -1 : v;
}

gboolean
bgd_state_file_save (const char *path, GPtrArray *records, GError **error)
{
  return bgd_state_file_save_full (path, records, -1, error);
}

gboolean
bgd_state_file_save_full (const char *path, GPtrArray *records, gint64 control_offset, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autofree char *data = NULL;
  gsize len = 0;

  for (guint i = 0; i < records->len; i++)
    {
      const BgdJobRecord *r = records->pdata[i];
      g_autofree char *group = g_strconcat (JOB_GROUP_PREFIX, r->name, NULL);

      g_key_file_set_string (kf, group, "LiveColor", r->live_color ? r->live_color : "");
      if (r->control_offset >= 0)
        g_key_file_set_int64 (kf, group, "ControlOffset", r->control_offset);
      if (r->last_cutover != NULL)
        g_key_file_set_string (kf, group, "LastCutover", r->last_cutover);
      if (r->fleet_committed != NULL)
        g_key_file_set_string (kf, group, "FleetCommitted", r->fleet_committed);
      for (guint c = 0; c < BG_N_COLORS; c++)
        {
          g_autofree char *kv = g_strdup_printf ("%sVersion", slot_key_prefix[c]);
          g_autofree char *km = g_strdup_printf ("%sSinkMode", slot_key_prefix[c]);
          g_autofree char *kg = g_strdup_printf ("%sGeneration", slot_key_prefix[c]);
          g_autofree char *ks = g_strdup_printf ("%sSteering", slot_key_prefix[c]);
          g_autofree char *kt = g_strdup_printf ("%sState", slot_key_prefix[c]);

          if (r->slots[c].state != NULL)
            g_key_file_set_string (kf, group, kt, r->slots[c].state);
          if (r->slots[c].steering != NULL)
            g_key_file_set_string (kf, group, ks, r->slots[c].steering);
          if (r->slots[c].version != NULL)
            g_key_file_set_string (kf, group, kv, r->slots[c].version);
          if (r->slots[c].sink_mode != NULL)
            g_key_file_set_string (kf, group, km, r->slots[c].sink_mode);
          g_key_file_set_uint64 (kf, group, kg, r->slots[c].generation);
        }
      if (r->members != NULL && r->members[0] != NULL)
        g_key_file_set_string_list (kf, group, "Members", (const char *const *) r->members,
                                    g_strv_length (r->members));
      if (r->observing_color != NULL)
        {
          g_key_file_set_string (kf, group, "ObservingColor", r->observing_color);
          g_key_file_set_int64 (kf, group, "ObservingSince", r->observing_since);
        }
    }
  if (control_offset >= 0)
    g_key_file_set_int64 (kf, "Control", "NextOffset", control_offset);
  data = g_key_file_to_data (kf, &len, NULL);
  if (!g_file_set_contents_full (path, data, len,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0600, error))
    return FALSE;
  return TRUE;
}
