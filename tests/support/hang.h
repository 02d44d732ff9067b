/*
 * Test harness: a loopback server that takes connections, completes the
 * HTTP/2 handshake (so gRPC sees a ready transport and sends its
 * requests), and then never answers anything, like a member cut off from
 * its peers that still accepts requests. A gRPC call to it hangs until
 * its deadline, so tests can show that deadlines bound what a caller
 * waits.
 */
#ifndef BFILL_TEST_HANG_H
#define BFILL_TEST_HANG_H

typedef struct t_hang t_hang;

/* Listens on 127.0.0.1 on a free port and serves from a thread; asserts
 * that it can. */
t_hang *t_hang_start(void);
/* "127.0.0.1:port"; owned by h. */
const char *t_hang_endpoint(const t_hang *h);
/* Stops the thread and closes every connection. NULL is allowed. */
void t_hang_stop(t_hang *h);

#endif
