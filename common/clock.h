#ifndef VOICE_CLOCK_H
#define VOICE_CLOCK_H

/*
 * Clocks and sleeping, in milliseconds. Base layer: libc only.
 */

/* Milliseconds from CLOCK_MONOTONIC: for deadlines and durations. */
long long clock_mono_ms(void);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME): for comparing with
 * wall-clock times from elsewhere (nginx's $msec). */
long long clock_real_ms(void);

/* Microseconds from CLOCK_MONOTONIC: for latencies finer than a millisecond. */
long long clock_mono_us(void);

/*
 * Sleeps ms milliseconds; returns at once when ms <= 0. A signal whose
 * handler runs (SIGTERM) cuts the sleep short, so a process asked to stop
 * does not wait it out: a caller that needs the whole time loops on a
 * deadline.
 */
void clock_sleep_ms(long long ms);

#endif
