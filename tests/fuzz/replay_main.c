/* replay_main.c — runs a fuzz target without libFuzzer, for `make test`:
 * every file of the corpus directories (or the files) named on the command
 * line goes through LLVMFuzzerTestOneInput() once, each in a child process,
 * so that a crash, a sanitizer report, a leak or a hang fails that one input
 * and the others still run. A child's stderr is shown only when it failed.
 * Ends with "fuzz: N passed, N failed (NAME)" and exits 1 if any failed. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLAY_TIMEOUT_S 60

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* In the child: reads <path> into a buffer of exactly its size (so that the
 * address sanitizer sees a read past the input) and runs the target. */
static int replay_child(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 2;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == -1) {
        fclose(f);
        return 2;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (data == NULL || fread(data, 1, size, f) != size) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(data);
        fclose(f);
        return 2;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

/* Runs one input in a child; 0 if it passed. <errfd> collects its stderr. */
static int replay_one(const char *path, int errfd)
{
    if (ftruncate(errfd, 0) == -1 || lseek(errfd, 0, SEEK_SET) == -1)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == -1) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        dup2(errfd, STDERR_FILENO);
        alarm(REPLAY_TIMEOUT_S);
        exit(replay_child(path));   /* exit(), not _exit(): leak checks run at exit */
    }
    int status;
    while (waitpid(pid, &status, 0) == -1)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;

    if (WIFSIGNALED(status))
        fprintf(stderr, "FAIL %s: killed by signal %d%s\n", path, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    else
        fprintf(stderr, "FAIL %s: exit status %d\n", path, WEXITSTATUS(status));
    char chunk[4096];
    ssize_t n;
    if (lseek(errfd, 0, SEEK_SET) == 0)
        while ((n = read(errfd, chunk, sizeof(chunk))) > 0)
            if (write(STDERR_FILENO, chunk, (size_t)n) != n)
                break;
    return -1;
}

static int replay_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of <dir>, in name order. */
static void replay_dir(const char *dir, int errfd, unsigned *passed, unsigned *failed)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "FAIL %s: %s\n", dir, strerror(errno));
        (*failed)++;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **more = realloc(names, cap * sizeof(*names));
            if (more == NULL)
                abort();
            names = more;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (names[n] == NULL)
            abort();
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), replay_name_cmp);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_one(names[i], errfd) == 0)
                (*passed)++;
            else
                (*failed)++;
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    FILE *errlog = tmpfile();
    if (errlog == NULL) {
        fprintf(stderr, "tmpfile: %s\n", strerror(errno));
        return 2;
    }
    unsigned passed = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            replay_dir(argv[i], fileno(errlog), &passed, &failed);
        else if (replay_one(argv[i], fileno(errlog)) == 0)
            passed++;
        else
            failed++;
    }
    fclose(errlog);
    const char *name = strrchr(argv[0], '/');
    printf("fuzz: %u passed, %u failed (%s)\n", passed, failed, name ? name + 1 : argv[0]);
    return failed ? 1 : 0;
}
