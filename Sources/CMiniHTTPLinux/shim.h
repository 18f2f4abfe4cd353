// Linux APIs that Swift's Glibc module does not import: epoll, eventfd and accept4
// (accept4 is declared only under _GNU_SOURCE, so it is reached through syscall(2)).
#ifndef CMINIHTTPLINUX_SHIM_H
#define CMINIHTTPLINUX_SHIM_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int cminihttp_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return (int)syscall(SYS_accept4, fd, addr, len, flags);
}

#endif
