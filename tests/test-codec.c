/* test-codec.c — the control-protocol codec: round trips of every message
 * type, the canonical encoding, and a table of malformed inputs that must
 * each fail with their own error code (never a crash).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "common/control-codec.h"

#include <string.h>

/* JSON in C strings is unreadable with \" everywhere: the tests write ' and
 * this turns it into ". */
static char *
json (const char *s)
{
  char *copy = g_strdup (s);
  for (char *p = copy; *p != '\0'; p++)
    if (*p == '\'')
      *p = '"';
  return copy;
}

static BgControlMessage *
decode_str (const char *s, GError **error)
{
  return bg_control_message_decode ((const guint8 *) s, strlen (s), error);
}

/* ---- Round trips --------------------------------------------------------- */

static BgControlMessage *
make_hello (void)
{
  BgControlMessage *m = bg_control_message_new (BG_CONTROL_HELLO, "host-1", 1700000000000000);
  BgControlJob *j = bg_control_job_new ("wordcount");
  j->has_live_color = TRUE;
  j->live_color = BG_COLOR_BLUE;
  BgControlSlot *blue = bg_control_slot_new (BG_COLOR_BLUE, "running");
  blue->version = g_strdup ("1.4.2");
  blue->sink_mode = BG_SINK_MODE_LIVE;
  blue->ready = TRUE;
  g_ptr_array_add (blue->positions, bg_control_offset_new ("words", 0, 1234));
  g_ptr_array_add (blue->positions, bg_control_offset_new ("words", 1, 99));
  g_ptr_array_add (j->slots, blue);
  BgControlSlot *green = bg_control_slot_new (BG_COLOR_GREEN, "catching-up");
  green->version = g_strdup ("1.5.0~rc1");
  green->sink_mode = BG_SINK_MODE_BLACKHOLE;
  g_ptr_array_add (green->positions, bg_control_offset_new ("words", 0, 1000));
  g_ptr_array_add (j->slots, green);
  g_ptr_array_add (m->jobs, j);
  BgControlJob *idle = bg_control_job_new ("idle.job_2");
  g_ptr_array_add (idle->slots, bg_control_slot_new (BG_COLOR_GREEN, "empty"));
  g_ptr_array_add (m->jobs, idle);
  return m;
}

static BgControlMessage *
make_prepare (void)
{
  BgControlMessage *m = bg_control_message_new (BG_CONTROL_PREPARE, "host-1", 42);
  m->job = g_strdup ("wordcount");
  m->id = g_strdup ("cut-20240101-1");
  m->outgoing = BG_COLOR_GREEN;
  m->incoming = BG_COLOR_BLUE;
  m->deadline = 1700000030000000;
  g_ptr_array_add (m->barriers, bg_control_offset_new ("words", 0, 0));
  g_ptr_array_add (m->barriers, bg_control_offset_new ("words", 1, G_MAXINT64));
  g_ptr_array_add (m->barriers, bg_control_offset_new ("other.topic_X-1", G_MAXINT32, 7));
  g_ptr_array_add (m->participants, g_strdup ("host-1"));
  g_ptr_array_add (m->participants, g_strdup ("host-2"));
  return m;
}

static BgControlMessage *
make_message (BgControlType type)
{
  BgControlMessage *m;
  switch (type)
    {
    case BG_CONTROL_HELLO:
      return make_hello ();
    case BG_CONTROL_PREPARE:
      return make_prepare ();
    default:
      break;
    }
  m = bg_control_message_new (type, "host-2", 0);
  m->job = g_strdup ("wordcount");
  if (type != BG_CONTROL_LEAVE && type != BG_CONTROL_EVICT)
    m->id = g_strdup ("cut-20240101-1");
  switch (type)
    {
    case BG_CONTROL_EVICT:
      m->evicted_host = g_strdup ("host-3");
      break;
    case BG_CONTROL_NACK:
      m->reason = g_strdup ("slot green not ready: lag 12000 > 1000 \"quoted\" ünïcödé");
      break;
    case BG_CONTROL_ABORT:
      m->reason = g_strdup ("deadline passed without ack from host-3");
      break;
    case BG_CONTROL_DONE:
      g_ptr_array_add (m->partitions, bg_control_partition_new ("words", 3));
      g_ptr_array_add (m->partitions, bg_control_partition_new ("words", 0));
      break;
    default:
      break;
    }
  return m;
}

static void
test_roundtrip (gconstpointer data)
{
  BgControlType type = GPOINTER_TO_INT (data);
  g_autoptr (GError) error = NULL;
  g_autoptr (BgControlMessage) msg = make_message (type);

  g_autoptr (GBytes) bytes = bg_control_message_encode (msg, &error);
  g_assert_no_error (error);
  g_assert_nonnull (bytes);
  gsize len;
  const guint8 *data_ = g_bytes_get_data (bytes, &len);
  g_test_message ("%.*s", (int) len, (const char *) data_);

  g_autoptr (BgControlMessage) back = bg_control_message_decode (data_, len, &error);
  g_assert_no_error (error);
  g_assert_nonnull (back);
  g_assert_cmpint (back->type, ==, type);
  g_assert_true (bg_control_message_equal (msg, back));

  /* Deterministic: the decoded copy encodes to the same bytes. */
  g_autoptr (GBytes) again = bg_control_message_encode (back, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (bytes, again));

  /* Equality is not trivially true: a changed timestamp differs. */
  back->ts++;
  g_assert_false (bg_control_message_equal (msg, back));

  /* Signed: carried through, and the canonical bytes leave it out. */
  msg->sig_key_id = g_strdup ("fleet-key.1");
  msg->sig_mac = g_strdup ("00ff9a");
  g_autoptr (GBytes) signed_bytes = bg_control_message_encode (msg, &error);
  g_assert_no_error (error);
  g_autoptr (GBytes) canonical = bg_control_message_canonical (msg, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (canonical, bytes));
  g_assert_false (g_bytes_equal (signed_bytes, bytes));
  g_autoptr (BgControlMessage) signed_back =
    bg_control_message_decode (g_bytes_get_data (signed_bytes, NULL), g_bytes_get_size (signed_bytes), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (signed_back->sig_key_id, ==, "fleet-key.1");
  g_assert_cmpstr (signed_back->sig_mac, ==, "00ff9a");
  g_assert_true (bg_control_message_equal (msg, signed_back));
}

static void
assert_bytes_str (GBytes *bytes, const char *expected)
{
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  g_autofree char *s = g_strndup (data, len);
  g_assert_cmpstr (s, ==, expected);
}

/* The canonical form is fixed: sorted members, no whitespace, no sig, and it
 * does not depend on how the input was laid out. */
static void
test_canonical (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *in = json ("{ 'type' : 'prepare', 'v':1, 'ts':42,'host':'h1',\n"
                              "  'sig': {'mac':'abcd','key_id':'k1'},\n"
                              "  'participants':['h1'], 'job':'j', 'id':'c1', 'deadline':5,\n"
                              "  'outgoing':'blue', 'incoming':'green',\n"
                              "  'barriers':[{'offset':10,'topic':'in','partition':0}] }");
  g_autofree char *expected = json ("{'barriers':[{'offset':10,'partition':0,'topic':'in'}],"
                                    "'deadline':5,'host':'h1','id':'c1','incoming':'green',"
                                    "'job':'j','outgoing':'blue','participants':['h1'],"
                                    "'ts':42,'type':'prepare','v':1}");
  g_autofree char *expected_signed = json ("{'barriers':[{'offset':10,'partition':0,'topic':'in'}],"
                                           "'deadline':5,'host':'h1','id':'c1','incoming':'green',"
                                           "'job':'j','outgoing':'blue','participants':['h1'],"
                                           "'sig':{'key_id':'k1','mac':'abcd'},"
                                           "'ts':42,'type':'prepare','v':1}");
  g_autoptr (BgControlMessage) msg = decode_str (in, &error);
  g_assert_no_error (error);
  g_autoptr (GBytes) canonical = bg_control_message_canonical (msg, &error);
  g_assert_no_error (error);
  assert_bytes_str (canonical, expected);
  g_autoptr (GBytes) encoded = bg_control_message_encode (msg, &error);
  g_assert_no_error (error);
  assert_bytes_str (encoded, expected_signed);

  /* Twice the same message, twice the same bytes. */
  g_autoptr (GBytes) canonical2 = bg_control_message_canonical (msg, &error);
  g_assert_true (g_bytes_equal (canonical, canonical2));

  /* Optional members: absent when unset, "all" only when true. */
  g_autoptr (BgControlMessage) done = bg_control_message_new (BG_CONTROL_DONE, "h1", 1);
  done->job = g_strdup ("j");
  done->id = g_strdup ("c1");
  done->all = TRUE;
  g_autoptr (GBytes) done_bytes = bg_control_message_encode (done, &error);
  g_assert_no_error (error);
  g_autofree char *done_expected = json ("{'all':true,'host':'h1','id':'c1','job':'j','ts':1,'type':'done','v':1}");
  assert_bytes_str (done_bytes, done_expected);
}

/* Members we do not know are ignored at every level (newer senders). */
static void
test_unknown_fields (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *in = json ("{'v':1,'type':'hello','host':'h1','ts':1,'future':{'a':[1,2.5,null]},"
                              "'jobs':[{'job':'j','extra':true,'slots':[{'color':'green','state':'up',"
                              "'sink_mode':'gated','ready':false,'cpu':0.5,"
                              "'positions':[{'topic':'t','partition':2,'offset':3,'lag':7}]}]}],"
                              "'sig':null,'version':null}");
  g_autoptr (BgControlMessage) msg = decode_str (in, &error);
  g_assert_no_error (error);
  g_assert_cmpint (msg->type, ==, BG_CONTROL_HELLO);
  g_assert_cmpuint (msg->jobs->len, ==, 1);
  BgControlJob *job = msg->jobs->pdata[0];
  g_assert_cmpstr (job->job, ==, "j");
  g_assert_false (job->has_live_color);
  BgControlSlot *slot = job->slots->pdata[0];
  g_assert_cmpint (slot->color, ==, BG_COLOR_GREEN);
  g_assert_cmpint (slot->sink_mode, ==, BG_SINK_MODE_GATED);
  g_assert_null (slot->version);
  g_assert_null (msg->sig_key_id);
  BgControlOffset *pos = slot->positions->pdata[0];
  g_assert_cmpstr (pos->topic, ==, "t");
  g_assert_cmpint (pos->partition, ==, 2);
  g_assert_cmpint (pos->offset, ==, 3);

  /* The re-encoding drops them. */
  g_autoptr (GBytes) out = bg_control_message_encode (msg, &error);
  g_assert_no_error (error);
  g_autofree char *s = g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
  g_assert_null (strstr (s, "future"));
  g_assert_null (strstr (s, "lag"));
}

/* ---- Malformed input ----------------------------------------------------- */

#define ENV "'v':1,'host':'h1','ts':1"
#define PREP_REST "'job':'j','id':'c1','outgoing':'blue','incoming':'green','deadline':5"
#define BARRIER "{'topic':'in','partition':0,'offset':10}"
#define PREP_WITH(barriers) "{" ENV ",'type':'prepare'," PREP_REST ",'barriers':[" barriers "],'participants':['h1']}"
#define SLOT "{'color':'blue','state':'up','sink_mode':'live','ready':true,'positions':[]}"
#define HELLO_WITH(jobs) "{" ENV ",'type':'hello','jobs':[" jobs "]}"

typedef struct {
  const char *name;
  const char *input; /* ' stands for " unless raw */
  gssize len;        /* -1: strlen */
  BgCodecError code;
  gboolean raw;
} BadCase;

static const BadCase bad_cases[] = {
  { "empty", "", -1, BG_CODEC_ERROR_NOT_JSON },
  { "whitespace", "  \n\t ", -1, BG_CODEC_ERROR_NOT_JSON },
  { "truncated", "{'v':1,'type':'ack','host':'h1','ts'", -1, BG_CODEC_ERROR_NOT_JSON },
  { "truncated-open", "{", -1, BG_CODEC_ERROR_NOT_JSON },
  { "truncated-string", "{'v':1,'type':'ack", -1, BG_CODEC_ERROR_NOT_JSON },
  { "nul-byte", "{\"v\":1\0}", 8, BG_CODEC_ERROR_NOT_JSON, TRUE },
  { "unbalanced", "{'v':1}]", -1, BG_CODEC_ERROR_NOT_JSON },
  { "trailing-value", "{" ENV ",'type':'leave','job':'j'}{}", -1, BG_CODEC_ERROR_NOT_JSON },
  { "trailing-garbage", "{" ENV ",'type':'leave','job':'j'} x", -1, BG_CODEC_ERROR_NOT_JSON },
  { "comment", "/* hi */{" ENV ",'type':'leave','job':'j'}", -1, BG_CODEC_ERROR_NOT_JSON },
  { "single-quotes", "{'v':1,\"type\":\"leave\"}", -1, BG_CODEC_ERROR_NOT_JSON, TRUE },
  { "hex-number", "{'v':0x1}", -1, BG_CODEC_ERROR_NOT_JSON },
  { "octal-number", "{'v':01}", -1, BG_CODEC_ERROR_NOT_JSON },
  { "bare-word", "{'v':ture}", -1, BG_CODEC_ERROR_NOT_JSON },
  { "raw-tab-in-string", "{'v':1,'host':'a\tb'}", -1, BG_CODEC_ERROR_NOT_JSON },
  { "bad-escape", "{'v':1,'host':'a\\xb'}", -1, BG_CODEC_ERROR_NOT_JSON },
  { "missing-comma", "{'v':1 'type':'ack'}", -1, BG_CODEC_ERROR_NOT_JSON },
  { "invalid-utf8", "{'v':1,'host':'\xff'}", -1, BG_CODEC_ERROR_INVALID_UTF8 },
  { "overlong-utf8", "{'v':1,'host':'\xc0\xaf'}", -1, BG_CODEC_ERROR_INVALID_UTF8 },
  { "escaped-nul", "{" ENV ",'type':'leave','job':'j\\u0000x'}", -1, BG_CODEC_ERROR_INVALID_UTF8 },
  { "lone-high-surrogate", "{'v':1,'x':'\\ud800'}", -1, BG_CODEC_ERROR_INVALID_UTF8 },
  { "lone-low-surrogate", "{'v':1,'x':'\\udc00\\ud800'}", -1, BG_CODEC_ERROR_INVALID_UTF8 },
  { "array", "[1]", -1, BG_CODEC_ERROR_NOT_OBJECT },
  { "number", "42", -1, BG_CODEC_ERROR_NOT_OBJECT },
  { "string", "'hello'", -1, BG_CODEC_ERROR_NOT_OBJECT },
  { "null", "null", -1, BG_CODEC_ERROR_NOT_OBJECT },
  { "no-version", "{'type':'leave','host':'h1','ts':1,'job':'j'}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "version-2", "{'v':2,'type':'leave','host':'h1','ts':1,'job':'j'}", -1, BG_CODEC_ERROR_UNKNOWN_VERSION },
  { "version-0", "{'v':0}", -1, BG_CODEC_ERROR_UNKNOWN_VERSION },
  { "version-string", "{'v':'1','type':'leave'}", -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "version-float", "{'v':1.0,'type':'leave'}", -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "unknown-type", "{" ENV ",'type':'launch','job':'j'}", -1, BG_CODEC_ERROR_UNKNOWN_TYPE },
  { "type-case", "{" ENV ",'type':'ACK','job':'j','id':'c'}", -1, BG_CODEC_ERROR_UNKNOWN_TYPE },
  { "no-type", "{" ENV ",'job':'j'}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "type-number", "{" ENV ",'type':3}", -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "no-host", "{'v':1,'ts':1,'type':'leave','job':'j'}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "null-host", "{'v':1,'host':null,'ts':1,'type':'leave','job':'j'}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "bad-host", "{'v':1,'host':'Host 1','ts':1,'type':'leave','job':'j'}", -1, BG_CODEC_ERROR_INVALID_NAME },
  { "long-host", "{'v':1,'host':'a123456789012345678901234567890123456789012345678901234567890123456789','ts':1,'type':'leave','job':'j'}", -1, BG_CODEC_ERROR_INVALID_NAME },
  { "no-ts", "{'v':1,'host':'h1','type':'leave','job':'j'}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "negative-ts", "{'v':1,'host':'h1','ts':-1,'type':'leave','job':'j'}", -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "string-ts", "{'v':1,'host':'h1','ts':'1','type':'leave','job':'j'}", -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "leave-no-job", "{" ENV ",'type':'leave'}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "bad-job", "{" ENV ",'type':'leave','job':'Job'}", -1, BG_CODEC_ERROR_INVALID_NAME },
  { "job-with-slash", "{" ENV ",'type':'leave','job':'a/b'}", -1, BG_CODEC_ERROR_INVALID_NAME },
  { "ack-no-id", "{" ENV ",'type':'ack','job':'j'}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "bad-id", "{" ENV ",'type':'commit','job':'j','id':'a b'}", -1, BG_CODEC_ERROR_INVALID_NAME },
  { "empty-id", "{" ENV ",'type':'commit','job':'j','id':''}", -1, BG_CODEC_ERROR_INVALID_NAME },
  { "prepare-no-job", "{" ENV ",'type':'prepare','id':'c1','outgoing':'blue','incoming':'green','deadline':5,'barriers':[" BARRIER "],'participants':['h1']}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "prepare-no-outgoing", "{" ENV ",'type':'prepare','job':'j','id':'c1','incoming':'green','deadline':5,'barriers':[" BARRIER "],'participants':['h1']}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "prepare-no-incoming", "{" ENV ",'type':'prepare','job':'j','id':'c1','outgoing':'blue','deadline':5,'barriers':[" BARRIER "],'participants':['h1']}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "prepare-no-deadline", "{" ENV ",'type':'prepare','job':'j','id':'c1','outgoing':'blue','incoming':'green','barriers':[" BARRIER "],'participants':['h1']}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "prepare-no-barriers", "{" ENV ",'type':'prepare'," PREP_REST ",'participants':['h1']}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "prepare-no-participants", "{" ENV ",'type':'prepare'," PREP_REST ",'barriers':[" BARRIER "]}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "bad-color", "{" ENV ",'type':'prepare','job':'j','id':'c1','outgoing':'red','incoming':'green','deadline':5,'barriers':[" BARRIER "],'participants':['h1']}", -1, BG_CODEC_ERROR_INVALID_VALUE },
  { "color-case", "{" ENV ",'type':'prepare','job':'j','id':'c1','outgoing':'Blue','incoming':'green','deadline':5,'barriers':[" BARRIER "],'participants':['h1']}", -1, BG_CODEC_ERROR_INVALID_VALUE },
  { "same-colors", "{" ENV ",'type':'prepare','job':'j','id':'c1','outgoing':'green','incoming':'green','deadline':5,'barriers':[" BARRIER "],'participants':['h1']}", -1, BG_CODEC_ERROR_CONFLICT },
  { "negative-deadline", "{" ENV ",'type':'prepare','job':'j','id':'c1','outgoing':'blue','incoming':'green','deadline':-5,'barriers':[" BARRIER "],'participants':['h1']}", -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "negative-offset", PREP_WITH ("{'topic':'in','partition':0,'offset':-1}"), -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "float-offset", PREP_WITH ("{'topic':'in','partition':0,'offset':10.0}"), -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "exponent-offset", PREP_WITH ("{'topic':'in','partition':0,'offset':1e3}"), -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "string-offset", PREP_WITH ("{'topic':'in','partition':0,'offset':'10'}"), -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "bool-offset", PREP_WITH ("{'topic':'in','partition':0,'offset':true}"), -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "offset-beyond-int64", PREP_WITH ("{'topic':'in','partition':0,'offset':9223372036854775808}"), -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "offset-below-int64", PREP_WITH ("{'topic':'in','partition':0,'offset':-9223372036854775809}"), -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "offset-huge", PREP_WITH ("{'topic':'in','partition':0,'offset':99999999999999999999999999}"), -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "partition-2^31", PREP_WITH ("{'topic':'in','partition':2147483648,'offset':1}"), -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "negative-partition", PREP_WITH ("{'topic':'in','partition':-1,'offset':1}"), -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "barrier-no-offset", PREP_WITH ("{'topic':'in','partition':0}"), -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "barrier-no-topic", PREP_WITH ("{'partition':0,'offset':1}"), -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "barrier-bad-topic", PREP_WITH ("{'topic':'in/out','partition':0,'offset':1}"), -1, BG_CODEC_ERROR_INVALID_NAME },
  { "barrier-empty-topic", PREP_WITH ("{'topic':'','partition':0,'offset':1}"), -1, BG_CODEC_ERROR_INVALID_NAME },
  { "barrier-not-object", PREP_WITH ("[0,1]"), -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "duplicate-barrier", PREP_WITH (BARRIER "," "{'topic':'in','partition':1,'offset':3}," BARRIER), -1, BG_CODEC_ERROR_DUPLICATE },
  { "empty-barriers", PREP_WITH (""), -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "barriers-not-array", "{" ENV ",'type':'prepare'," PREP_REST ",'barriers':" BARRIER ",'participants':['h1']}", -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "participants-empty", "{" ENV ",'type':'prepare'," PREP_REST ",'barriers':[" BARRIER "],'participants':[]}", -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "participants-duplicate", "{" ENV ",'type':'prepare'," PREP_REST ",'barriers':[" BARRIER "],'participants':['h1','h2','h1']}", -1, BG_CODEC_ERROR_DUPLICATE },
  { "participants-bad-name", "{" ENV ",'type':'prepare'," PREP_REST ",'barriers':[" BARRIER "],'participants':['H1']}", -1, BG_CODEC_ERROR_INVALID_NAME },
  { "participants-number", "{" ENV ",'type':'prepare'," PREP_REST ",'barriers':[" BARRIER "],'participants':[1]}", -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "nack-no-reason", "{" ENV ",'type':'nack','job':'j','id':'c1'}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "nack-empty-reason", "{" ENV ",'type':'nack','job':'j','id':'c1','reason':''}", -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "abort-reason-number", "{" ENV ",'type':'abort','job':'j','id':'c1','reason':5}", -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "evict-self", "{" ENV ",'type':'evict','job':'j','evicted_host':'h1'}", -1, BG_CODEC_ERROR_CONFLICT },
  { "evict-no-host", "{" ENV ",'type':'evict','job':'j'}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "done-nothing", "{" ENV ",'type':'done','job':'j','id':'c1'}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "done-all-false", "{" ENV ",'type':'done','job':'j','id':'c1','all':false,'partitions':[]}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "done-all-string", "{" ENV ",'type':'done','job':'j','id':'c1','all':'yes'}", -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "done-duplicate", "{" ENV ",'type':'done','job':'j','id':'c1','partitions':[{'topic':'t','partition':1},{'topic':'t','partition':1}]}", -1, BG_CODEC_ERROR_DUPLICATE },
  { "done-bad-partition", "{" ENV ",'type':'done','job':'j','id':'c1','partitions':[{'topic':'t','partition':'1'}]}", -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "hello-no-jobs", "{" ENV ",'type':'hello'}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "hello-duplicate-job", HELLO_WITH ("{'job':'j','slots':[]},{'job':'j','slots':[]}"), -1, BG_CODEC_ERROR_DUPLICATE },
  { "hello-duplicate-color", HELLO_WITH ("{'job':'j','slots':[" SLOT "," SLOT "]}"), -1, BG_CODEC_ERROR_DUPLICATE },
  { "hello-bad-sink-mode", HELLO_WITH ("{'job':'j','slots':[{'color':'blue','state':'up','sink_mode':'on','ready':true,'positions':[]}]}"), -1, BG_CODEC_ERROR_INVALID_VALUE },
  { "hello-bad-version", HELLO_WITH ("{'job':'j','slots':[{'color':'blue','version':'-1','state':'up','sink_mode':'live','ready':true,'positions':[]}]}"), -1, BG_CODEC_ERROR_INVALID_NAME },
  { "hello-ready-string", HELLO_WITH ("{'job':'j','slots':[{'color':'blue','state':'up','sink_mode':'live','ready':'true','positions':[]}]}"), -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "hello-bad-live-color", HELLO_WITH ("{'job':'j','live_color':'red','slots':[]}"), -1, BG_CODEC_ERROR_INVALID_VALUE },
  { "hello-negative-position", HELLO_WITH ("{'job':'j','slots':[{'color':'blue','state':'up','sink_mode':'live','ready':true,'positions':[{'topic':'t','partition':0,'offset':-3}]}]}"), -1, BG_CODEC_ERROR_OUT_OF_RANGE },
  { "hello-job-not-object", HELLO_WITH ("'j'"), -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "sig-not-object", "{" ENV ",'type':'leave','job':'j','sig':'abcd'}", -1, BG_CODEC_ERROR_WRONG_TYPE },
  { "sig-no-mac", "{" ENV ",'type':'leave','job':'j','sig':{'key_id':'k'}}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "sig-no-key", "{" ENV ",'type':'leave','job':'j','sig':{'mac':'ab'}}", -1, BG_CODEC_ERROR_MISSING_FIELD },
  { "sig-uppercase-mac", "{" ENV ",'type':'leave','job':'j','sig':{'key_id':'k','mac':'ABCD'}}", -1, BG_CODEC_ERROR_INVALID_VALUE },
  { "sig-odd-mac", "{" ENV ",'type':'leave','job':'j','sig':{'key_id':'k','mac':'abc'}}", -1, BG_CODEC_ERROR_INVALID_VALUE },
};

static void
test_malformed (gconstpointer data)
{
  const BadCase *c = data;
  g_autofree char *converted = c->raw ? NULL : json (c->input);
  const char *input = c->raw ? c->input : converted;
  gsize len = c->len >= 0 ? (gsize) c->len : strlen (input);
  g_autoptr (GError) error = NULL;

  g_autoptr (BgControlMessage) msg = bg_control_message_decode ((const guint8 *) input, len, &error);
  g_assert_null (msg);
  g_assert_nonnull (error);
  g_test_message ("%s: %s", c->name, error->message);
  g_assert_error (error, BG_CODEC_ERROR, (gint) c->code);
}

/* The messages name the field and its place. */
static void
test_error_messages (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *in = json (PREP_WITH (BARRIER ",{'topic':'in','partition':1,'offset':1},"
                                         "{'topic':'in','partition':2,'offset':1},"
                                         "{'topic':'in','partition':3,'offset':-1}"));
  g_assert_null (decode_str (in, &error));
  g_assert_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_OUT_OF_RANGE);
  g_assert_cmpstr (error->message, ==, "prepare: barriers[3].offset: must be >= 0");
  g_clear_error (&error);

  g_autofree char *hello = json (HELLO_WITH ("{'job':'j','slots':[{'color':'blue','state':'up','sink_mode':'live','ready':true,'positions':[{'topic':'t','partition':0}]}]}"));
  g_assert_null (decode_str (hello, &error));
  g_assert_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_MISSING_FIELD);
  g_assert_cmpstr (error->message, ==, "hello: jobs[0].slots[0].positions[0].offset: missing");
}

/* A string of @n copies of @unit between @head and @tail. */
static char *
repeat (const char *head, const char *unit, gsize n, const char *tail)
{
  GString *s = g_string_new (head);
  for (gsize i = 0; i < n; i++)
    g_string_append (s, unit);
  g_string_append (s, tail);
  return g_string_free (s, FALSE);
}

static void
assert_decode_error (const char *input, gsize len, BgCodecError code)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgControlMessage) msg = bg_control_message_decode ((const guint8 *) input, len, &error);
  g_assert_null (msg);
  g_assert_error (error, BG_CODEC_ERROR, (gint) code);
}

/* Deep nesting never reaches json-glib's recursive parser. */
static void
test_deep (void)
{
  g_autofree char *brackets = repeat ("", "[", 60000, "");
  assert_decode_error (brackets, strlen (brackets), BG_CODEC_ERROR_TOO_DEEP);
  g_autofree char *braces = repeat ("", "{\"a\":", 10000, "");
  assert_decode_error (braces, strlen (braces), BG_CODEC_ERROR_TOO_DEEP);
  g_autofree char *huge = repeat ("", "[", 100000, "");
  assert_decode_error (huge, strlen (huge), BG_CODEC_ERROR_TOO_LARGE);

  /* The limit itself: the top-level object is depth 1, so 31 levels of
   * array in an unknown member pass and 32 do not. */
  g_autofree char *head = json ("{'v':1,'host':'h1','ts':1,'type':'leave','job':'j','x':");
  g_autofree char *open_ok = repeat (head, "[", BG_CONTROL_MAX_DEPTH - 1, "");
  g_autofree char *ok = repeat (open_ok, "]", BG_CONTROL_MAX_DEPTH - 1, "}");
  g_autoptr (GError) error = NULL;
  g_autoptr (BgControlMessage) msg = decode_str (ok, &error);
  g_assert_no_error (error);
  g_assert_cmpint (msg->type, ==, BG_CONTROL_LEAVE);
  g_autofree char *open_bad = repeat (head, "[", BG_CONTROL_MAX_DEPTH, "");
  g_autofree char *bad = repeat (open_bad, "]", BG_CONTROL_MAX_DEPTH, "}");
  assert_decode_error (bad, strlen (bad), BG_CODEC_ERROR_TOO_DEEP);
}

static void
test_size (void)
{
  /* A valid message padded to exactly the cap passes; one byte more fails
   * before any parsing. */
  g_autofree char *head = json ("{'v':1,'host':'h1','ts':1,'type':'leave','job':'j','pad':'");
  gsize pad = BG_CONTROL_MAX_SIZE - strlen (head) - 2;
  g_autofree char *at_cap = repeat (head, "x", pad, "\"}");
  g_assert_cmpuint (strlen (at_cap), ==, BG_CONTROL_MAX_SIZE);
  g_autoptr (GError) error = NULL;
  g_autoptr (BgControlMessage) msg = decode_str (at_cap, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (msg->job, ==, "j");
  g_autofree char *over = repeat (head, "x", pad + 1, "\"}");
  assert_decode_error (over, strlen (over), BG_CODEC_ERROR_TOO_LARGE);

  /* Encode refuses what decode would refuse: a hello too big to send. */
  g_autoptr (BgControlMessage) hello = bg_control_message_new (BG_CONTROL_HELLO, "h1", 1);
  for (int j = 0; j < 300; j++)
    {
      g_autofree char *name = g_strdup_printf ("job-%d", j);
      BgControlJob *job = bg_control_job_new (name);
      BgControlSlot *slot = bg_control_slot_new (BG_COLOR_BLUE, "running");
      for (int p = 0; p < 8; p++)
        g_ptr_array_add (slot->positions, bg_control_offset_new ("input-topic", p, 1000000));
      g_ptr_array_add (job->slots, slot);
      g_ptr_array_add (hello->jobs, job);
    }
  g_autoptr (GBytes) bytes = bg_control_message_encode (hello, &error);
  g_assert_null (bytes);
  g_assert_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_TOO_LARGE);
}

static void
test_too_many (void)
{
  g_autofree char *head = json ("{'v':1,'host':'h1','ts':1,'type':'prepare'," PREP_REST ",'participants':['h1'],'barriers':[{}");
  g_autofree char *in = repeat (head, ",{}", BG_CONTROL_MAX_ITEMS, "]}");
  g_assert_cmpuint (strlen (in), <=, BG_CONTROL_MAX_SIZE);
  assert_decode_error (in, strlen (in), BG_CODEC_ERROR_TOO_MANY);

  g_autofree char *head2 = json ("{'v':1,'host':'h1','ts':1,'type':'done','job':'j','id':'c','partitions':[0");
  g_autofree char *in2 = repeat (head2, ",0", BG_CONTROL_MAX_ITEMS, "]}");
  assert_decode_error (in2, strlen (in2), BG_CODEC_ERROR_TOO_MANY);

  /* A long reason. */
  g_autofree char *rhead = json ("{'v':1,'host':'h1','ts':1,'type':'abort','job':'j','id':'c','reason':'");
  g_autofree char *reason = repeat (rhead, "r", BG_CONTROL_MAX_REASON + 1, "\"}");
  assert_decode_error (reason, strlen (reason), BG_CODEC_ERROR_OUT_OF_RANGE);
  g_autofree char *reason_ok = repeat (rhead, "r", BG_CONTROL_MAX_REASON, "\"}");
  g_autoptr (GError) error = NULL;
  g_autoptr (BgControlMessage) msg = decode_str (reason_ok, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (strlen (msg->reason), ==, BG_CONTROL_MAX_REASON);
}

/* What the agent builds is checked as strictly as what it reads. */
static void
test_encode_rejects (void)
{
  g_autoptr (GError) error = NULL;

  g_autoptr (BgControlMessage) prep = make_prepare ();
  prep->incoming = prep->outgoing;
  g_assert_null (bg_control_message_encode (prep, &error));
  g_assert_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_CONFLICT);
  g_clear_error (&error);
  g_assert_false (bg_control_message_validate (prep, &error));
  g_assert_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_CONFLICT);
  g_clear_error (&error);

  prep->incoming = bg_color_other (prep->outgoing);
  g_assert_true (bg_control_message_validate (prep, &error));
  g_assert_no_error (error);
  g_ptr_array_add (prep->barriers, bg_control_offset_new ("words", 0, 5));
  g_assert_false (bg_control_message_validate (prep, &error));
  g_assert_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_DUPLICATE);
  g_clear_error (&error);

  g_autoptr (BgControlMessage) ack = make_message (BG_CONTROL_ACK);
  g_free (ack->host);
  ack->host = g_strdup ("Not A Host");
  g_assert_false (bg_control_message_validate (ack, &error));
  g_assert_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_INVALID_NAME);
  g_clear_error (&error);
  g_clear_pointer (&ack->host, g_free);
  g_assert_false (bg_control_message_validate (ack, &error));
  g_assert_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_MISSING_FIELD);
  g_clear_error (&error);

  g_autoptr (BgControlMessage) bogus = bg_control_message_new ((BgControlType) 99, "h1", 1);
  g_assert_false (bg_control_message_validate (bogus, &error));
  g_assert_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_UNKNOWN_TYPE);
  g_clear_error (&error);

  g_autoptr (BgControlMessage) neg = make_message (BG_CONTROL_COMMIT);
  neg->ts = -5;
  g_assert_false (bg_control_message_validate (neg, &error));
  g_assert_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_OUT_OF_RANGE);
  g_clear_error (&error);

  /* A color outside the enum does not pass as blue. */
  g_autoptr (BgControlMessage) odd = make_prepare ();
  odd->outgoing = (BgColor) 7;
  g_assert_false (bg_control_message_validate (odd, &error));
  g_assert_error (error, BG_CODEC_ERROR, BG_CODEC_ERROR_INVALID_VALUE);
}

static void
test_names (void)
{
  for (int t = BG_CONTROL_HELLO; t <= BG_CONTROL_DONE; t++)
    {
      BgControlType back;
      const char *s = bg_control_type_to_string ((BgControlType) t);
      g_assert_nonnull (s);
      g_assert_true (bg_control_type_from_string (s, &back));
      g_assert_cmpint (back, ==, t);
    }
  g_assert_null (bg_control_type_to_string ((BgControlType) 0));
  BgControlType unused;
  g_assert_false (bg_control_type_from_string ("hello ", &unused));
  for (int m = BG_SINK_MODE_UNKNOWN; m <= BG_SINK_MODE_GATED; m++)
    {
      BgSinkMode back;
      g_assert_true (bg_control_sink_mode_from_string (bg_control_sink_mode_to_string ((BgSinkMode) m), &back));
      g_assert_cmpint (back, ==, m);
    }
}

/* The fuzzer's seed corpus is made of valid messages (a seed that fails to
 * decode would only exercise the error paths). */
static void
test_seed_corpus (void)
{
  g_autofree char *dir_path = g_test_build_filename (G_TEST_DIST, "fuzz", "corpus", "codec", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, &error);
  g_assert_no_error (error);
  guint seen_types = 0;
  const char *name;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir_path, name, NULL);
      g_autofree char *contents = NULL;
      gsize len;
      g_assert_true (g_file_get_contents (path, &contents, &len, &error));
      g_autoptr (BgControlMessage) msg = bg_control_message_decode ((const guint8 *) contents, len, &error);
      if (error != NULL)
        g_test_message ("%s: %s", name, error->message);
      g_assert_no_error (error);
      seen_types |= 1u << msg->type;
    }
  for (int t = BG_CONTROL_HELLO; t <= BG_CONTROL_DONE; t++)
    g_assert_true (seen_types & (1u << t));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (int t = BG_CONTROL_HELLO; t <= BG_CONTROL_DONE; t++)
    {
      g_autofree char *path = g_strdup_printf ("/codec/roundtrip/%s", bg_control_type_to_string ((BgControlType) t));
      g_test_add_data_func (path, GINT_TO_POINTER (t), test_roundtrip);
    }
  g_test_add_func ("/codec/canonical", test_canonical);
  g_test_add_func ("/codec/unknown-fields", test_unknown_fields);
  g_test_add_func ("/codec/names", test_names);
  for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/codec/malformed/%s", bad_cases[i].name);
      g_test_add_data_func (path, &bad_cases[i], test_malformed);
    }
  g_test_add_func ("/codec/error-messages", test_error_messages);
  g_test_add_func ("/codec/deep", test_deep);
  g_test_add_func ("/codec/size", test_size);
  g_test_add_func ("/codec/too-many", test_too_many);
  g_test_add_func ("/codec/encode-rejects", test_encode_rejects);
  g_test_add_func ("/codec/seed-corpus", test_seed_corpus);
  return g_test_run ();
}
