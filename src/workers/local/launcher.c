/*
 * conveyor-launch: starts one local step contained (see containment.ts for the guarantees), in
 * one exec instead of the chain `setpriv -- unshare -- [setpriv --] sh -c INIT -- env -- SHELL`.
 * C99 + POSIX + Linux system calls, libc only, no name service (groups come resolved on the
 * command line), so that it links statically and starts in well under a millisecond.
 *
 * Usage (strict: anything else is refused with a message on stderr and status 125):
 *
 *   conveyor-launch --mode pid-namespace|user-namespace|process-group
 *                   [--parent PID]
 *                   [--uid N --gid N (--groups G[,G...] | --clear-groups)]
 *                   [--workspace /DIR] [--attempt-dir /DIR [--report-fd N]]
 *                   -- /ABSOLUTE/PROGRAM [ARG...]
 *
 *   --parent       the pid of the process that starts the launcher: once the parent-death signal
 *                  is armed, a launcher whose parent is not that one any more (it died first) exits.
 *   --uid ...      run the program as this user, with exactly these groups (all three together).
 *   --workspace    the run's workspace: created if missing (0700; with --uid, given to that user,
 *                  as it is again at every launch), never through a symbolic link, and entered: it
 *                  is the program's working directory (unless CONVEYOR_CREATE_CWD names another).
 *   --attempt-dir  the attempt's private directory, created afresh (0700, its missing parents
 *                  0711), holding the empty files `output` and `events` (0600), all three given
 *                  to the --uid user. Nothing is followed or reused: a name already taken there
 *                  (a file, a directory, a symbolic link) refuses the launch.
 *   --report-fd    an open descriptor (3 or more) on which, in a namespace mode, the launcher
 *                  writes "<output size> <events size>[ removed]\n" once the namespace is gone
 *                  (nothing of the step runs any more), -1 for one that is not a regular file;
 *                  two empty files are removed with their directory (" removed"), so that the
 *                  worker has nothing to read or remove. Neither the init nor the program holds it.
 *
 * The workspace and the attempt's files are made before anything else (as the worker's user, in
 * its namespaces), so that the worker spends no round trip of its own on them; when it reads the
 * files after the program ends, it does so as it would any file a step owns (private-file.ts).
 *
 * Environment it consumes (and removes before the program runs):
 *   CONVEYOR_RESTORE          space-separated names of loader variables (LD_PRELOAD, TMPDIR…,
 *                             LOADER_VARIABLES in ../executables.ts) to restore from
 *   CONVEYOR_RESTORE_<name>   their values, renamed so that no loader honours them on the way;
 *   CONVEYOR_CREATE_CWD       a directory to create (mkdir -p) and enter as the step's user.
 *
 * The processes:
 *
 *   launcher (outer)   SIGKILL on its parent's death; unshares the PID and mount namespaces
 *     |                (and the user one in user-namespace mode); forks the init; forwards
 *     |                TERM/INT/HUP to it; exits with its status (a death by signal n is
 *     |                re-raised, as unshare does). Its own death kills the init (parent-death
 *     |                signal), and an init's death kills every process of its namespace.
 *     +- init (pid 1)  in a process group of its own (signals come through the launcher);
 *        |             makes / private (recursively) and mounts a fresh /proc; forks the
 *        |             command; turns TERM/INT/HUP into SIGTERM for every process of the
 *        |             namespace; reaps every orphan; exits as soon as the command ends, with
 *        |             its status (128+n for a death by signal n), which tears the namespace
 *        |             down: nothing the step started outlives it. It keeps the worker's
 *        |             user (with --uid, the step's processes cannot signal or trace it).
 *        +- command    switches user, restores loader variables, creates and enters the
 *                      directory, resets every signal to its default and unblocks them all,
 *                      then execs the program.
 *
 * In process-group mode the launcher arms the parent-death signal, prepares itself as the
 * command does and execs the program (no namespace, no fork).
 *
 * Exit statuses of its own, with a message on stderr: 125 for a refused command line or a
 * failed step of the launch (namespace, mount, user switch, directory); 127 when the program is
 * not there, 126 when it cannot be run (as env(1)).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/** Status of a launch that failed before the program ran (as `env` and `cd || exit 125`). */
#define EXIT_LAUNCH 125
/** Most supplementary groups Linux accepts (NGROUPS_MAX of the kernel). */
#define MAX_GROUPS 65536

enum mode { MODE_NONE, MODE_PID_NAMESPACE, MODE_USER_NAMESPACE, MODE_PROCESS_GROUP };

/** The parsed command line. */
struct options {
	enum mode mode;
	int has_parent;
	pid_t parent;
	int has_uid, has_gid, has_groups;
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* NULL with ngroups 0 for --clear-groups */
	size_t ngroups;
	const char *workspace;   /* --workspace, or NULL */
	const char *attempt_dir; /* --attempt-dir, or NULL */
	int report_fd;           /* --report-fd, or -1 */
	char **program; /* NULL-terminated argv, program[0] absolute */
};

extern char **environ;

static const char USAGE[] =
	"usage: conveyor-launch --mode pid-namespace|user-namespace|process-group [--parent PID] "
	"[--uid N --gid N (--groups G[,G...]|--clear-groups)] [--workspace /DIR] "
	"[--attempt-dir /DIR [--report-fd N]] "
	"-- /ABSOLUTE/PROGRAM [ARG...]";

/** Reports what failed on stderr and exits with EXIT_LAUNCH (never returns). */
static void fail(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	fputs("conveyor-launch: ", stderr);
	vfprintf(stderr, format, args);
	fputc('\n', stderr);
	va_end(args);
	_exit(EXIT_LAUNCH);
}

/** Like fail, with strerror(errno) appended. */
#define FAIL_ERRNO(what, ...) fail(what ": %s", __VA_ARGS__, strerror(errno))

/* ---- command line ---- */

/** A decimal id (uid, gid or pid) below 2^32-1, or exits naming the option. */
static unsigned long parse_id(const char *text, const char *option)
{
	if (text == NULL || *text < '0' || *text > '9')
		fail("%s needs a decimal number, got \"%s\"\n%s", option, text ? text : "", USAGE);
	errno = 0;
	char *end;
	unsigned long value = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || value >= 0xffffffffUL)
		fail("%s: \"%s\" is not a valid id", option, text);
	return value;
}

/** `--groups 1,2,3`: a non-empty list of gids, each entry a decimal id. */
static void parse_groups(const char *text, struct options *o)
{
	if (text == NULL || *text == '\0') fail("--groups needs a comma-separated list of gids\n%s", USAGE);
	size_t count = 1;
	for (const char *p = text; *p; p++) count += *p == ',';
	if (count > MAX_GROUPS) fail("--groups: more than %d groups", MAX_GROUPS);
	o->groups = calloc(count, sizeof *o->groups);
	char *copy = strdup(text);
	if (o->groups == NULL || copy == NULL) fail("out of memory");
	char *rest = copy;
	for (size_t i = 0; i < count; i++) {
		char *item = strsep(&rest, ",");
		o->groups[i] = (gid_t)parse_id(item, "--groups");
	}
	o->ngroups = count;
	free(copy);
}

/** A directory option's value: an absolute path, or exits naming the option. */
static const char *parse_path(const char *text, const char *option)
{
	if (text == NULL || text[0] != '/')
		fail("%s needs an absolute path, got \"%s\"\n%s", option, text ? text : "", USAGE);
	return text;
}

static enum mode parse_mode(const char *text)
{
	if (text == NULL) fail("--mode needs a value\n%s", USAGE);
	if (strcmp(text, "pid-namespace") == 0) return MODE_PID_NAMESPACE;
	if (strcmp(text, "user-namespace") == 0) return MODE_USER_NAMESPACE;
	if (strcmp(text, "process-group") == 0) return MODE_PROCESS_GROUP;
	fail("--mode: unknown mode \"%s\" (pid-namespace, user-namespace or process-group)", text);
	return MODE_NONE;
}

/** Fails when an option was given twice (`seen` is its flag, set here). */
static void once(int *seen, const char *option)
{
	if (*seen) fail("%s given twice", option);
	*seen = 1;
}

/** Parses argv strictly into `o`: every option known, each at most once, all checks done. */
static void parse(int argc, char **argv, struct options *o)
{
	int has_mode = 0, has_workspace = 0, has_attempt_dir = 0, has_report = 0;
	int i = 1;
	for (; i < argc; i++) {
		const char *arg = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(arg, "--") == 0) break;
		if (strcmp(arg, "--mode") == 0) {
			once(&has_mode, arg);
			o->mode = parse_mode(value);
		} else if (strcmp(arg, "--parent") == 0) {
			once(&o->has_parent, arg);
			o->parent = (pid_t)parse_id(value, arg);
		} else if (strcmp(arg, "--uid") == 0) {
			once(&o->has_uid, arg);
			o->uid = (uid_t)parse_id(value, arg);
		} else if (strcmp(arg, "--gid") == 0) {
			once(&o->has_gid, arg);
			o->gid = (gid_t)parse_id(value, arg);
		} else if (strcmp(arg, "--groups") == 0) {
			once(&o->has_groups, "--groups/--clear-groups");
			parse_groups(value, o);
		} else if (strcmp(arg, "--workspace") == 0) {
			once(&has_workspace, arg);
			o->workspace = parse_path(value, arg);
		} else if (strcmp(arg, "--attempt-dir") == 0) {
			once(&has_attempt_dir, arg);
			o->attempt_dir = parse_path(value, arg);
		} else if (strcmp(arg, "--report-fd") == 0) {
			once(&has_report, arg);
			unsigned long fd = parse_id(value, arg);
			if (fd < 3 || fd > 65535) fail("--report-fd: %lu is not a descriptor above stderr", fd);
			o->report_fd = (int)fd;
		} else if (strcmp(arg, "--clear-groups") == 0) {
			once(&o->has_groups, "--groups/--clear-groups");
			continue; /* takes no value */
		} else {
			fail("unknown argument \"%s\"\n%s", arg, USAGE);
		}
		i++; /* the option's value */
	}
	if (!has_mode) fail("--mode is required\n%s", USAGE);
	if ((o->has_uid || o->has_gid || o->has_groups) && !(o->has_uid && o->has_gid && o->has_groups))
		fail("--uid, --gid and --groups (or --clear-groups) go together\n%s", USAGE);
	if (has_report && !has_attempt_dir) fail("--report-fd goes with --attempt-dir\n%s", USAGE);
	if (has_report && fcntl(o->report_fd, F_SETFD, FD_CLOEXEC) != 0)
		FAIL_ERRNO("--report-fd %d", o->report_fd);
	if (i >= argc - 1) fail("no program after \"--\"\n%s", USAGE);
	o->program = argv + i + 1;
	if (o->program[0][0] != '/')
		fail("the program must be an absolute path (no PATH lookup), got \"%s\"", o->program[0]);
}

/* ---- the parent-death signal ---- */

/** SIGKILL when the parent dies. A change of user clears it: armed again after one. */
static void arm_parent_death(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) FAIL_ERRNO("%s", "prctl(PR_SET_PDEATHSIG)");
}

/** Exits when the parent named by --parent died before the signal was armed (it covers only later deaths). */
static void check_parent(const struct options *o)
{
	if (o->has_parent && getppid() != o->parent)
		fail("parent %ld is gone: not starting", (long)o->parent);
}

/* ---- the command's preparation ---- */

/** Exactly the given groups, then gid and uid (real, effective and saved). */
static void switch_user(const struct options *o)
{
	if (setgroups(o->ngroups, o->groups) != 0) FAIL_ERRNO("%s", "setgroups");
	if (setresgid(o->gid, o->gid, o->gid) != 0) FAIL_ERRNO("setresgid(%lu)", (unsigned long)o->gid);
	if (setresuid(o->uid, o->uid, o->uid) != 0) FAIL_ERRNO("setresuid(%lu)", (unsigned long)o->uid);
}

/** Whether `name` is a shell variable name (what the chain's `export $v=` accepts). */
static int is_name(const char *name)
{
	if (!(*name == '_' || (*name >= 'A' && *name <= 'Z') || (*name >= 'a' && *name <= 'z'))) return 0;
	for (const char *p = name + 1; *p; p++)
		if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
			return 0;
	return 1;
}

/** Puts back the loader variables `launchEnv` renamed (CONVEYOR_RESTORE, CONVEYOR_RESTORE_<name>). */
static void restore_loader_variables(void)
{
	const char *list = getenv("CONVEYOR_RESTORE");
	if (list != NULL) {
		char *copy = strdup(list);
		if (copy == NULL) fail("out of memory");
		for (char *rest = copy, *name; (name = strsep(&rest, " \t\n")) != NULL;) {
			if (*name == '\0') continue;
			if (!is_name(name)) fail("CONVEYOR_RESTORE: \"%s\" is not a variable name", name);
			char key[256];
			if (snprintf(key, sizeof key, "CONVEYOR_RESTORE_%s", name) >= (int)sizeof key)
				fail("CONVEYOR_RESTORE: variable name \"%s\" is too long", name);
			const char *value = getenv(key);
			if (setenv(name, value ? value : "", 1) != 0) FAIL_ERRNO("setenv(%s)", name);
			unsetenv(key);
		}
		free(copy);
	}
	unsetenv("CONVEYOR_RESTORE");
}

/** Whether `path` names a directory (following links, as `mkdir -p` does for existing parts). */
static int is_directory(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/**
 * `mkdir -p -m mode -- path`, with the caller's rights: each missing component is created (`mode`
 * less the umask), an existing directory (or link to one) is passed through.
 */
static int make_directories(const char *path, mode_t mode)
{
	char *copy = strdup(path);
	if (copy == NULL) return -1;
	int result = 0;
	for (char *p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0') continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(copy, mode) != 0) {
			int mkdir_errno = errno;
			if (!is_directory(copy)) {
				errno = mkdir_errno;
				result = -1;
				break;
			}
		}
		*p = saved;
		if (saved == '\0') break;
	}
	int saved_errno = errno;
	free(copy);
	errno = saved_errno;
	return result;
}

/**
 * Creates and enters CONVEYOR_CREATE_CWD (already as the step's user, so a link planted in the
 * workspace is followed with the step's rights), and sets PWD as a shell would have: the
 * entered directory, or the real working directory when the inherited PWD names another one.
 */
static void enter_directory(void)
{
	const char *dir = getenv("CONVEYOR_CREATE_CWD");
	if (dir != NULL && *dir != '\0') {
		if (dir[0] != '/') fail("CONVEYOR_CREATE_CWD must be absolute, got \"%s\"", dir);
		if (make_directories(dir, 0777) != 0) FAIL_ERRNO("cannot create directory %s", dir);
		if (chdir(dir) != 0) FAIL_ERRNO("cannot enter directory %s", dir);
		if (setenv("PWD", dir, 1) != 0) FAIL_ERRNO("%s", "setenv(PWD)");
	} else {
		const char *pwd = getenv("PWD");
		struct stat here, there;
		if (pwd == NULL || pwd[0] != '/' || stat(pwd, &there) != 0 || stat(".", &here) != 0 ||
		    here.st_dev != there.st_dev || here.st_ino != there.st_ino) {
			char *real = getcwd(NULL, 0);
			if (real != NULL && setenv("PWD", real, 1) != 0) FAIL_ERRNO("%s", "setenv(PWD)");
			free(real);
		}
	}
	unsetenv("CONVEYOR_CREATE_CWD");
}

/**
 * Every signal back to its default action and none blocked: a step starts as from a plain
 * shell (no SIGINT or SIGQUIT ignored, as a shell's background job would have them).
 */
static void reset_signals(void)
{
	struct sigaction action;
	memset(&action, 0, sizeof action);
	action.sa_handler = SIG_DFL;
	sigemptyset(&action.sa_mask);
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP) continue;
		sigaction(sig, &action, NULL); /* EINVAL for the few libc reserves: nothing to reset */
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/** Becomes the step's command: user, variables, directory, signals, then exec (never returns). */
static void exec_program(const struct options *o)
{
	if (o->has_uid) {
		switch_user(o);
		/* The change of user cleared the parent-death signal. In a namespace the parent is
		   the init, whose death kills us anyway; in a process group this is the real guard. */
		arm_parent_death();
		if (o->mode == MODE_PROCESS_GROUP) check_parent(o);
	}
	restore_loader_variables();
	enter_directory();
	reset_signals();
	execve(o->program[0], o->program, environ);
	/* As env(1): 127 for a program that is not there, 126 for one that cannot run. */
	int code = errno == ENOENT ? 127 : 126;
	fprintf(stderr, "conveyor-launch: cannot run %s: %s\n", o->program[0], strerror(errno));
	_exit(code);
}

/* ---- the workspace and the attempt's files ---- */

/** The attempt directory, kept open for `--report-fd`, else -1. */
static int attempt_fd = -1;

/** Gives the open file `fd` (named `path` in messages) to the --uid user, if there is one. */
static void give(int fd, const char *path, const struct options *o)
{
	if (o->has_uid && fchown(fd, o->uid, o->gid) != 0)
		FAIL_ERRNO("cannot give %s to uid %lu", path, (unsigned long)o->uid);
}

/** Opens the directory `path` itself, never a symbolic link's target. */
static int open_directory(const char *path, const char *what)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
		fail("%s %s is not a directory (a symbolic link?)", what, path);
	if (fd < 0) FAIL_ERRNO("cannot open %s %s", what, path);
	return fd;
}

/**
 * `--workspace`: created if missing (the first step of the run on this worker, or one after a step
 * removed it), given to the step's user, entered. As the worker's user: its parent is the worker's
 * base directory, where nobody else can plant anything.
 */
static void prepare_workspace(const struct options *o)
{
	const char *dir = o->workspace;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) FAIL_ERRNO("cannot create workspace %s", dir);
	int fd = open_directory(dir, "workspace");
	give(fd, dir, o);
	if (fchdir(fd) != 0) FAIL_ERRNO("cannot enter workspace %s", dir);
	close(fd);
	if (setenv("PWD", dir, 1) != 0) FAIL_ERRNO("%s", "setenv(PWD)");
}

/** An empty file `name` in the directory `dir_fd`, new (never a link, never one already there). */
static void create_empty(int dir_fd, const char *dir, const char *name, const struct options *o)
{
	int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) FAIL_ERRNO("cannot create %s/%s", dir, name);
	if (o->has_uid && fchown(fd, o->uid, o->gid) != 0)
		FAIL_ERRNO("cannot give %s/%s to uid %lu", dir, name, (unsigned long)o->uid);
	close(fd);
}

/**
 * `--attempt-dir`: a new directory (mkdir fails on any name already taken, a link included), its
 * files created through the directory's descriptor while only the worker's user may write there,
 * then the directory given to the step's user. Its parent (the run's, under the base directory's
 * `.attempts`) is made 0711 on the run's first attempt: passable, not listable.
 */
static void prepare_attempt(const struct options *o)
{
	const char *dir = o->attempt_dir;
	if (mkdir(dir, 0700) != 0) {
		if (errno != ENOENT) FAIL_ERRNO("cannot create attempt directory %s", dir);
		char *parent = strdup(dir);
		if (parent == NULL) fail("out of memory");
		*strrchr(parent, '/') = '\0';
		if (*parent != '\0' && make_directories(parent, 0711) != 0)
			FAIL_ERRNO("cannot create directory %s", parent);
		free(parent);
		if (mkdir(dir, 0700) != 0) FAIL_ERRNO("cannot create attempt directory %s", dir);
	}
	int fd = open_directory(dir, "attempt directory");
	create_empty(fd, dir, "output", o);
	create_empty(fd, dir, "events", o);
	give(fd, dir, o);
	if (o->report_fd >= 0) attempt_fd = fd; /* for the report (close-on-exec, and the init closes it) */
	else close(fd);
}

/** The size of the attempt's regular file `name`, or -1 (removed, a link, a FIFO…). */
static long long attempt_file_size(const char *name)
{
	struct stat st;
	if (fstatat(attempt_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) return -1;
	return (long long)st.st_size;
}

/**
 * Removes the attempt's two (empty) files and its directory: whether the directory is gone (it is
 * not when the step left something else in it; the worker then removes it).
 */
static int remove_attempt(const struct options *o)
{
	return unlinkat(attempt_fd, "output", 0) == 0 && unlinkat(attempt_fd, "events", 0) == 0 &&
	       rmdir(o->attempt_dir) == 0;
}

/**
 * `--report-fd`: the two files' sizes, looked at once the init is gone (and with it every process
 * of the step). When both are empty, nothing is left to read, and the directory is removed here
 * ("0 0 removed"): the worker neither reads nor removes anything. A failed write costs the worker
 * its reads (a removed file reads as empty), nothing else.
 */
static void report_files(const struct options *o)
{
	if (o->report_fd < 0 || attempt_fd < 0) return;
	long long output = attempt_file_size("output"), events = attempt_file_size("events");
	int removed = output == 0 && events == 0 && remove_attempt(o);
	char line[64];
	int length =
		snprintf(line, sizeof line, "%lld %lld%s\n", output, events, removed ? " removed" : "");
	if (write(o->report_fd, line, (size_t)length) != length) { /* the worker reads the files */ }
	close(o->report_fd);
}

/* ---- namespaces ---- */

/** Writes `text` to `path` in one write (uid_map and gid_map accept nothing else). */
static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) FAIL_ERRNO("cannot open %s", path);
	ssize_t length = (ssize_t)strlen(text);
	if (write(fd, text, (size_t)length) != length) FAIL_ERRNO("cannot write %s", path);
	close(fd);
}

/**
 * Unshares the PID and mount namespaces (the PID one takes effect for the children), with a user
 * namespace first in user-namespace mode, mapping the current user to itself (as
 * `unshare --user --map-current-user`).
 */
static void enter_namespaces(const struct options *o)
{
	int flags = CLONE_NEWPID | CLONE_NEWNS;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (o->mode == MODE_USER_NAMESPACE) flags |= CLONE_NEWUSER;
	if (unshare(flags) != 0) FAIL_ERRNO("%s", "unshare");
	if (o->mode == MODE_USER_NAMESPACE) {
		char map[64];
		write_file("/proc/self/setgroups", "deny");
		snprintf(map, sizeof map, "%lu %lu 1", (unsigned long)uid, (unsigned long)uid);
		write_file("/proc/self/uid_map", map);
		snprintf(map, sizeof map, "%lu %lu 1", (unsigned long)gid, (unsigned long)gid);
		write_file("/proc/self/gid_map", map);
		arm_parent_death(); /* in case entering the user namespace cleared it */
		check_parent(o);
	}
}

/** The signals the launcher and the init handle synchronously (sigwaitinfo), blocked meanwhile. */
static void handled_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGCHLD);
}

/** The next of the (blocked) signals in `set`, waited for synchronously. */
static int next_signal(const sigset_t *set)
{
	for (;;) {
		int sig = sigwaitinfo(set, NULL);
		if (sig >= 0) return sig;
		if (errno != EINTR) FAIL_ERRNO("%s", "sigwaitinfo");
	}
}

/** SIGCHLD at its default: an inherited SIG_IGN would make the kernel reap children for us. */
static void default_sigchld(void)
{
	struct sigaction action;
	memset(&action, 0, sizeof action);
	action.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &action, NULL);
}

/** The shell's `$?` for a wait status: the exit code, or 128+n for a death by signal n. */
static int shell_status(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/**
 * The namespace's pid 1: mounts, forks the command, forwards TERM/INT/HUP as SIGTERM to the
 * whole namespace, reaps every child, exits with the command's status once it ends.
 * `launcher_alive` is the read end of a pipe whose only writer is the launcher.
 */
static void run_init(const struct options *o, int launcher_alive)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) FAIL_ERRNO("%s", "prctl(PR_SET_PDEATHSIG)");
	/* A process group of its own, which the command inherits: a signal to the launcher's group
	   (how the worker stops a step) reaches the step once, through the launcher's forward and
	   the kill(-1) below, not three times (directly, forwarded, and relayed). */
	if (setpgid(0, 0) != 0) FAIL_ERRNO("%s", "setpgid");
	/* getppid() is 0 across the namespace boundary: the pipe tells whether the launcher died
	   before the signal was armed (its end closed: POLLHUP). */
	struct pollfd alive = { .fd = launcher_alive, .events = POLLIN };
	if (poll(&alive, 1, 0) != 0) fail("the launcher is gone: not starting");
	close(launcher_alive);

	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) FAIL_ERRNO("%s", "cannot make / private");
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
		FAIL_ERRNO("%s", "cannot mount /proc");

	pid_t command = fork();
	if (command < 0) FAIL_ERRNO("%s", "fork");
	if (command == 0) exec_program(o);

	sigset_t set;
	handled_signals(&set);
	for (;;) {
		int sig = next_signal(&set);
		if (sig != SIGCHLD) {
			kill(-1, SIGTERM); /* every process of the namespace but this one */
			continue;
		}
		int status;
		for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;)
			if (pid == command) _exit(shell_status(status));
	}
}

/**
 * The launcher's side of a namespace: forks the init, forwards TERM/INT/HUP to it, and ends as
 * it ended (its exit code, or a death by the same signal).
 */
static int supervise(const struct options *o)
{
	sigset_t set;
	handled_signals(&set);
	default_sigchld();
	/* Blocked before the fork: a signal arriving meanwhile waits for the loop below. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) FAIL_ERRNO("%s", "sigprocmask");
	int alive[2];
	if (pipe2(alive, O_CLOEXEC) != 0) FAIL_ERRNO("%s", "pipe");

	pid_t init = fork();
	if (init < 0) FAIL_ERRNO("%s", "fork");
	if (init == 0) {
		close(alive[1]);
		/* What only the launcher uses: the step's processes never hold them. */
		if (o->report_fd >= 0) close(o->report_fd);
		if (attempt_fd >= 0) close(attempt_fd);
		run_init(o, alive[0]);
	}
	close(alive[0]);

	int status;
	for (;;) {
		int sig = next_signal(&set);
		if (sig != SIGCHLD) {
			kill(init, sig);
			continue;
		}
		pid_t pid = waitpid(init, &status, WNOHANG);
		if (pid == init) break;
		if (pid < 0 && errno != EINTR) FAIL_ERRNO("%s", "waitpid");
	}
	/* The init is gone only once every process of its namespace is (the kernel waits for them). */
	report_files(o);
	if (WIFEXITED(status)) return WEXITSTATUS(status);
	/* Killed by a signal (only possible from outside the namespace): die of the same one. */
	int sig = WTERMSIG(status);
	signal(sig, SIG_DFL);
	sigset_t only;
	sigemptyset(&only);
	sigaddset(&only, sig);
	sigprocmask(SIG_UNBLOCK, &only, NULL);
	kill(getpid(), sig);
	return 128 + sig;
}

int main(int argc, char **argv)
{
	arm_parent_death(); /* first of all: the window before it is the --parent check's */
	struct options o;
	memset(&o, 0, sizeof o);
	o.report_fd = -1;
	parse(argc, argv, &o);
	check_parent(&o);
	if (o.workspace != NULL) prepare_workspace(&o);
	if (o.attempt_dir != NULL) prepare_attempt(&o);
	if (o.mode == MODE_PROCESS_GROUP) exec_program(&o);
	enter_namespaces(&o);
	return supervise(&o);
}
