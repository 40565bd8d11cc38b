/* bench-gate — nanoseconds per bg_gate_admit() on the live, blackhole and
 * committed-gated paths, against a baseline loop that does the same work
 * minus the gate call, measured in the same run (best of a few repeats).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>

#include "bluegreen.h"

#define ITERATIONS 50000000L
#define REPEATS 3
#define BARRIER (ITERATIONS / 2)

/* Keeps a value alive without emitting any instruction for it. */
#define KEEP(x) __asm__ volatile ("" : "+r"(x))

typedef struct {
  BgGate *gate;
  BgTopic *topic;
} Bench;

static G_GNUC_NO_INLINE int64_t
loop_baseline (Bench *b, long n)
{
  int64_t emitted = 0;
  for (long i = 0; i < n; i++)
    {
      int64_t offset = i;
      KEEP (offset);
      /* What a job does with the verdict, without the gate call. */
      int64_t v = offset & 1;
      KEEP (v);
      emitted += v;
    }
  (void) b;
  return emitted;
}

static G_GNUC_NO_INLINE int64_t
loop_gate (Bench *b, long n)
{
  int64_t emitted = 0;
  for (long i = 0; i < n; i++)
    {
      int64_t offset = i;
      KEEP (offset);
      int64_t v = bg_gate_admit (b->gate, b->topic, 0, offset) == BG_VERDICT_EMIT;
      KEEP (v);
      emitted += v;
    }
  return emitted;
}

static double
best_ns (int64_t (*loop) (Bench *, long), Bench *b)
{
  double best = G_MAXDOUBLE;
  for (int r = 0; r < REPEATS; r++)
    {
      gint64 start = g_get_monotonic_time ();
      int64_t sink = loop (b, ITERATIONS);
      gint64 elapsed = g_get_monotonic_time () - start;
      KEEP (sink);
      best = MIN (best, (double) elapsed * 1000.0 / (double) ITERATIONS);
    }
  return best;
}

static Bench
bench_new (BgSinkMode mode)
{
  Bench b = { bg_gate_new (mode), NULL };
  b.topic = bg_gate_topic (b.gate, "in", 8);
  return b;
}

int
main (void)
{
  Bench live = bench_new (BG_SINK_MODE_LIVE);
  Bench blackhole = bench_new (BG_SINK_MODE_BLACKHOLE);
  /* Incoming side of a committed cutover at the middle of the run: half the
   * records below the barrier (drop), half at or above it (emit). */
  Bench gated = bench_new (BG_SINK_MODE_BLACKHOLE);
  BgPlan *plan = bg_plan_new ("bench", BG_PLAN_ROLE_INCOMING, 0);
  bg_plan_add_barrier (plan, "in", 0, BARRIER);
  if (!bg_gate_prepare (gated.gate, plan) || !bg_gate_commit (gated.gate, "bench"))
    g_error ("cannot commit the benchmark plan");
  bg_plan_free (plan);

  double base = best_ns (loop_baseline, &live);
  double l = best_ns (loop_gate, &live);
  double bh = best_ns (loop_gate, &blackhole);
  double g = best_ns (loop_gate, &gated);

  if (bg_gate_emitted (live.gate) != (uint64_t) REPEATS * ITERATIONS
      || bg_gate_dropped (blackhole.gate) != (uint64_t) REPEATS * ITERATIONS
      || bg_gate_emitted (gated.gate) != (uint64_t) REPEATS * (ITERATIONS - BARRIER))
    g_error ("the gate gave wrong verdicts under the benchmark");

  g_print ("gate.baseline %.2f ns/admit\n", base);
  g_print ("gate.live %.2f ns/admit\n", l);
  g_print ("gate.blackhole %.2f ns/admit\n", bh);
  g_print ("gate.gated %.2f ns/admit\n", g);
  g_print ("gate.live.ratio %.2f x\n", l / base);
  g_print ("gate.blackhole.ratio %.2f x\n", bh / base);
  g_print ("gate.gated.ratio %.2f x\n", g / base);

  bg_gate_free (live.gate);
  bg_gate_free (blackhole.gate);
  bg_gate_free (gated.gate);
  return 0;
}
