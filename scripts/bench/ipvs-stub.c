/*
 * LD_PRELOAD stub of the kernel's IPVS control interface, for benchmarking keepalived's
 * checker child on a host without IP_VS: keepalived's libipvs falls back from generic netlink
 * (no "IPVS" family here) to the IP_VS_SO_* socket options, and this stub answers those as an
 * empty IPVS 1.2.1 table that accepts every change (it stores nothing). Other socket options
 * pass through to libc. Only the checker's start-up and state changes touch IPVS; the
 * checks themselves are real sockets either way.
 *   gcc -shared -fPIC -O2 -o ipvs-stub.so ipvs-stub.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define IP_VS_BASE_CTL (64 + 1024 + 64)
#define IP_VS_SO_SET_MAX (IP_VS_BASE_CTL + 15)
#define IP_VS_SO_GET_VERSION IP_VS_BASE_CTL
#define IP_VS_SO_GET_INFO (IP_VS_BASE_CTL + 1)
#define IP_VS_SO_GET_MAX (IP_VS_BASE_CTL + 7)

static int is_ipvs(int level, int optname, int max) {
  return level == IPPROTO_IP && optname >= IP_VS_BASE_CTL && optname <= max;
}

int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen) {
  static int (*real)(int, int, int, const void *, socklen_t);
  if (is_ipvs(level, optname, IP_VS_SO_SET_MAX)) return 0;
  if (!real) real = dlsym(RTLD_NEXT, "setsockopt");
  return real(fd, level, optname, optval, optlen);
}

int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen) {
  static int (*real)(int, int, int, void *, socklen_t *);
  if (is_ipvs(level, optname, IP_VS_SO_GET_MAX) && optval && optlen) {
    /* Everything the kernel would fill: an empty table (zero counts, zero timeouts, no daemons). */
    memset(optval, 0, *optlen);
    if (optname == IP_VS_SO_GET_VERSION) {
      strncpy(optval, "IP Virtual Server version 1.2.1 (size=4096)", *optlen ? *optlen - 1 : 0);
    } else if (optname == IP_VS_SO_GET_INFO && *optlen >= 3 * sizeof(unsigned)) {
      unsigned *info = optval; /* struct ip_vs_getinfo: version, size, num_services */
      info[0] = 0x010201;
      info[1] = 4096;
    }
    return 0;
  }
  if (!real) real = dlsym(RTLD_NEXT, "getsockopt");
  return real(fd, level, optname, optval, optlen);
}
