// Linux APIs that Swift's Glibc module does not import: epoll, eventfd, accept4 and prctl
// (accept4 is declared only under _GNU_SOURCE, so it is reached through syscall(2)).
#ifndef CMINIHTTPLINUX_SHIM_H
#define CMINIHTTPLINUX_SHIM_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int cminihttp_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return (int)syscall(SYS_accept4, fd, addr, len, flags);
}

/// Names the calling thread (at most 15 bytes are kept), as shown by top -H and perf.
static inline void cminihttp_set_thread_name(const char *name) {
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

#endif
