/* fuzz-codec.c — libFuzzer target for the control-protocol codec.
 *
 * Any input must decode or fail with a BG_CODEC_ERROR, never crash; and
 * whatever decodes must re-encode, decode back to an equal message and
 * encode to the same bytes again (the canonical form is a fixed point), or
 * agents would disagree about what a message says or sign different bytes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "common/control-codec.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BgControlMessage) msg = bg_control_message_decode (data, size, &error);
  if (msg == NULL)
    {
      if (error == NULL || error->domain != BG_CODEC_ERROR)
        abort ();
      return 0;
    }

  g_autoptr (GBytes) bytes = bg_control_message_encode (msg, &error);
  if (bytes == NULL)
    abort (); /* accepted but not re-encodable */
  g_autoptr (BgControlMessage) back =
    bg_control_message_decode (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), &error);
  if (back == NULL || !bg_control_message_equal (msg, back))
    abort ();
  g_autoptr (GBytes) again = bg_control_message_encode (back, &error);
  if (again == NULL || !g_bytes_equal (bytes, again))
    abort ();
  g_autoptr (GBytes) canonical = bg_control_message_canonical (msg, &error);
  if (canonical == NULL)
    abort ();
  if (msg->sig_key_id == NULL && !g_bytes_equal (canonical, bytes))
    abort ();
  return 0;
}
