/* A TCP stream of a known pseudo-random content, for the network benchmark and the transfer test
 * (a static guest program; busybox nc writes 1 KiB at a time, which measures nc, not the network).
 *
 *   netstream send HOST PORT BYTES SEED   connect and send BYTES of the stream, 64 KiB per write
 *   netstream recv PORT BYTES SEED        accept one connection on PORT, read BYTES and check every
 *                                         byte against the stream
 *
 * Either way it prints "@@netstream=BYTES DIGEST SECONDS", DIGEST being the 64-bit FNV-1a over the
 * stream's little-endian 64-bit words as they were sent or received (the host computes the same on
 * its side), and on a mismatch "@@netstream=mismatch at OFFSET". The stream: xorshift64 from SEED,
 * one 64-bit word at a time, little-endian. Exit status 0 only when everything went through intact.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

static uint64_t state;

static uint64_t next_word(void) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

static uint64_t digest = 0xcbf29ce484222325ull;

static void fold(const uint64_t *w, size_t n) {
  for (size_t i = 0; i < n; i++) digest = (digest ^ w[i]) * 0x100000001b3ull;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t buf[CHUNK / 8];
static uint64_t want[CHUNK / 8];

static int send_stream(const char *host, int port, uint64_t bytes) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (s < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("netstream: connect");
    return 1;
  }
  double t0 = now();
  uint64_t sent = 0;
  while (sent < bytes) {
    size_t n = bytes - sent < CHUNK ? bytes - sent : CHUNK;
    for (size_t i = 0; i < (n + 7) / 8; i++) buf[i] = next_word();
    fold(buf, n / 8);
    for (size_t off = 0; off < n;) {
      ssize_t w = write(s, (char *)buf + off, n - off);
      if (w <= 0) {
        perror("netstream: write");
        return 1;
      }
      off += w;
    }
    sent += n;
  }
  shutdown(s, SHUT_WR);
  /* Wait for the receiver to close: everything arrived. */
  while (read(s, buf, sizeof buf) > 0) {
  }
  printf("@@netstream=%llu %016llx %.3f\n", (unsigned long long)sent, (unsigned long long)digest, now() - t0);
  return 0;
}

static int recv_stream(int port, uint64_t bytes) {
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0) {
    perror("netstream: listen");
    return 1;
  }
  printf("@@netstream-listening=%d\n", port);
  fflush(stdout);
  int s = accept(l, NULL, NULL);
  if (s < 0) {
    perror("netstream: accept");
    return 1;
  }
  double t0 = now();
  uint64_t got = 0;
  size_t have = 0; /* bytes of buf filled (a partial word waits for the rest) */
  while (got < bytes) {
    ssize_t r = read(s, (char *)buf + have, sizeof buf - have);
    if (r <= 0) break;
    have += r;
    size_t words = have / 8;
    for (size_t i = 0; i < words; i++) want[i] = next_word();
    if (memcmp(buf, want, words * 8) != 0) {
      size_t i = 0;
      while (((char *)buf)[i] == ((char *)want)[i]) i++;
      printf("@@netstream=mismatch at %llu\n", (unsigned long long)(got + i));
      return 1;
    }
    fold(buf, words);
    got += words * 8;
    memmove(buf, (char *)buf + words * 8, have - words * 8);
    have -= words * 8;
  }
  close(s);
  if (got != bytes) {
    printf("@@netstream=short %llu of %llu\n", (unsigned long long)got, (unsigned long long)bytes);
    return 1;
  }
  printf("@@netstream=%llu %016llx %.3f\n", (unsigned long long)got, (unsigned long long)digest, now() - t0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "send") == 0) {
    state = strtoull(argv[5], NULL, 0) | 1;
    return send_stream(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 0) & ~7ull);
  }
  if (argc == 5 && strcmp(argv[1], "recv") == 0) {
    state = strtoull(argv[4], NULL, 0) | 1;
    return recv_stream(atoi(argv[2]), strtoull(argv[3], NULL, 0) & ~7ull);
  }
  fprintf(stderr, "usage: netstream send HOST PORT BYTES SEED | netstream recv PORT BYTES SEED\n");
  return 2;
}
