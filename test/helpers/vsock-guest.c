/* A small AF_VSOCK program for the Linux guest test (test/vsock-linux.test.ts), built static with
 * aarch64-linux-gnu-gcc at test time. Every result goes to stdout as a "@@key=value" line.
 *
 *   vsock-guest listen PORT   accept one connection on PORT; read a line and send it back in upper
 *                             case; then count the bytes that follow until EOF and answer
 *                             "bytes=N sum=S" (S: s = s*31 + byte, mod 2^32); close.
 *   vsock-guest connect PORT N  connect to the host (CID 2) port PORT, send "hello host\n" and N
 *                             pattern bytes (byte i = i*7 mod 256), shut down sending, print the
 *                             host's whole answer as @@reply=...
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h> /* after sys/socket.h: it uses struct sockaddr */
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int serve(unsigned port) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  struct sockaddr_vm a;
  memset(&a, 0, sizeof a);
  a.svm_family = AF_VSOCK;
  a.svm_cid = VMADDR_CID_ANY;
  a.svm_port = port;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 1) != 0) {
    printf("@@listen_error=%s\n", strerror(errno));
    return 1;
  }
  printf("@@listening=%u\n", port);
  int c = accept(s, NULL, NULL);
  if (c < 0) {
    printf("@@accept_error=%s\n", strerror(errno));
    return 1;
  }
  char line[256];
  size_t n = 0;
  char ch;
  while (n < sizeof line && read(c, &ch, 1) == 1) {
    line[n++] = (char)toupper((unsigned char)ch);
    if (ch == '\n') break;
  }
  if (write_all(c, line, n) != 0) printf("@@write_error=%s\n", strerror(errno));
  static char buf[65536];
  unsigned long total = 0, sum = 0;
  ssize_t r;
  while ((r = read(c, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < r; i++) sum = (sum * 31 + (unsigned char)buf[i]) & 0xffffffffUL;
    total += (unsigned long)r;
  }
  char out[128];
  int k = snprintf(out, sizeof out, "bytes=%lu sum=%lu\n", total, sum);
  if (write_all(c, out, (size_t)k) != 0) printf("@@write_error=%s\n", strerror(errno));
  close(c);
  printf("@@served=%lu\n", total);
  return 0;
}

static int client(unsigned port, unsigned long nbytes) {
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  struct sockaddr_vm a;
  memset(&a, 0, sizeof a);
  a.svm_family = AF_VSOCK;
  a.svm_cid = VMADDR_CID_HOST;
  a.svm_port = port;
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
    printf("@@connect_error_%u=%s\n", port, strerror(errno));
    return 1;
  }
  const char *hello = "hello host\n";
  static char buf[65536];
  int ok = write_all(s, hello, strlen(hello)) == 0;
  unsigned long i = 0;
  while (ok && i < nbytes) {
    size_t m = nbytes - i < sizeof buf ? (size_t)(nbytes - i) : sizeof buf;
    for (size_t j = 0; j < m; j++) buf[j] = (char)(((i + j) * 7) & 0xff);
    ok = write_all(s, buf, m) == 0;
    i += m;
  }
  if (!ok) printf("@@write_error=%s\n", strerror(errno));
  shutdown(s, SHUT_WR);
  size_t n = 0;
  ssize_t r;
  while (n < sizeof buf - 1 && (r = read(s, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
  buf[n] = 0;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
  printf("@@reply=%s\n", buf);
  close(s);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc == 3 && strcmp(argv[1], "listen") == 0) return serve((unsigned)strtoul(argv[2], NULL, 10));
  if (argc == 4 && strcmp(argv[1], "connect") == 0)
    return client((unsigned)strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10));
  fprintf(stderr, "usage: vsock-guest listen PORT | connect PORT NBYTES\n");
  return 2;
}
