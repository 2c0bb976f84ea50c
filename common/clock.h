/* clock: wall time for records, monotonic time for timeouts. */
#ifndef TSR_CLOCK_H
#define TSR_CLOCK_H

#include <stdint.h>

int64_t clock_wall_ms(void);
int64_t clock_mono_ms(void);
/* Nanoseconds, for durations shorter than a millisecond (metrics). */
int64_t clock_mono_ns(void);

#endif
