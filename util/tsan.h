/*
 * Happens-before edges ThreadSanitizer cannot see for itself: liburcu
 * orders what it publishes with its own atomics and membarrier, in a
 * library TSan does not instrument. BF_TSAN_RELEASE(a) in the thread that
 * hands something over, BF_TSAN_ACQUIRE(a) in the one that takes it, on
 * the same address. They vanish in ordinary builds.
 */
#ifndef BF_UTIL_TSAN_H
#define BF_UTIL_TSAN_H

#ifdef __SANITIZE_THREAD__
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define BF_TSAN_RELEASE(addr) __tsan_release((void *)(addr))
#define BF_TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
#else
#define BF_TSAN_RELEASE(addr) ((void)(addr))
#define BF_TSAN_ACQUIRE(addr) ((void)(addr))
#endif

#endif
