/* reader.h — feeds a BgVerifier from Kafka: the input topic and the output
 * topic, each from its low to its high watermark captured at start.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "verify/verifier.h"

#define BG_VERIFY_ERROR (bg_verify_error_quark ())
GQuark bg_verify_error_quark (void);

typedef enum {
  BG_VERIFY_ERROR_KAFKA,    /* metadata, watermarks or consuming failed */
  BG_VERIFY_ERROR_TIMEOUT,  /* did not reach the high watermarks in time */
  BG_VERIFY_ERROR_USAGE,    /* bad options */
} BgVerifyError;

typedef struct {
  const char *bootstrap;
  const char *input;
  const char *output;
  double settle;            /* seconds the output must stay unchanged before capture */
  double timeout;           /* seconds for the whole read */
  const char *const *kafka_props; /* "key=value", NULL-terminated, may be NULL */
} BgVerifyReadOptions;

/* Creates a verifier for the input topic and reads both topics into it.
 * Barriers/colors may be set on the result afterwards only if no outputs
 * depend on them, so pass them in through @setup, called after the
 * inputs are read and before the outputs are. */
typedef void (*BgVerifySetupFunc) (BgVerifier *v, gpointer user_data);
BgVerifier *bg_verify_read (const BgVerifyReadOptions *opts, BgVerifySetupFunc setup,
                            gpointer user_data, GError **error);
