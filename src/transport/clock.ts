/**
 * Wall-clock time in integer microseconds since the Unix epoch, from the monotonic high-resolution timer
 * anchored at process start, so it never goes backwards inside a process even if the system clock is
 * stepped. Drivers read it; protocol state machines receive it as an argument and never call it.
 */
export type ClockUs = () => number;

const originUs = Math.round(performance.timeOrigin * 1000);

export const wallClockUs: ClockUs = () => originUs + Math.floor(performance.now() * 1000);
