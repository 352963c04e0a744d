//! The command-line grammar.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use zos_netproto::Level;

/// Carry your running work between Linux machines.
///
/// A master (your laptop) finds zombie machines on the LAN over mDNS, pairs
/// with them through a one-time code, and talks to them over Noise-encrypted
/// sessions. Each instance keeps its identity, trust store and state in its
/// home directory; its control socket lives under $XDG_RUNTIME_DIR.
#[derive(Parser, Debug)]
#[command(name = "zos", version, propagate_version = true)]
pub struct Cli {
    /// The instance's home: identity.key, trust.toml (zombie), zombies.toml
    /// and exports.toml (master), zombie.toml (zombie settings).
    /// Default: $XDG_CONFIG_HOME/zos or ~/.config/zos.
    #[arg(long, global = true, env = "ZOS_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the master daemon in the foreground.
    Master {
        /// Name shown to zombies (default: the host name).
        #[arg(long)]
        name: Option<String>,
        /// Restrict mDNS to this interface (repeatable; `lo` allowed).
        #[arg(long = "interface", value_name = "IF")]
        interfaces: Vec<String>,
    },
    /// Run the zombie daemon in the foreground.
    Zombie {
        /// Name shown to masters.
        #[arg(long)]
        name: String,
        /// TCP port for sessions (default: any free port, advertised over mDNS).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Restrict mDNS to this interface (repeatable; `lo` allowed).
        #[arg(long = "interface", value_name = "IF")]
        interfaces: Vec<String>,
        /// Control levels this zombie offers.
        #[arg(long, value_delimiter = ',', default_values_t = [Level::Complete, Level::Partial])]
        levels: Vec<Level>,
        /// Accept every domination by a trusted master without asking
        /// (unattended hosts; also `auto_accept = true` in HOME/zombie.toml).
        #[arg(long)]
        auto_accept: bool,
        /// Never open viewer windows for the master's shared apps by
        /// itself, not even when `viewers = true` in HOME/zombie.toml (by
        /// default they open only when this machine's user asks).
        #[arg(long)]
        no_viewers: bool,
        /// Do not open a ZOS session (Xephyr) on this machine's display for
        /// a dominating master (also `zos_session = false`).
        #[arg(long)]
        no_session: bool,
        /// Keep the ZOS session a window (of `window_size` in
        /// HOME/zombie.toml, default 1024x768) instead of full screen.
        #[arg(long)]
        windowed: bool,
    },
    /// Print this instance's public-key fingerprint (creating the identity on first use).
    Id,
    /// Show the local daemon's state.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List the zombies the master sees on the LAN, with their resources.
    Hosts {
        /// Machine-readable output (a JSON array).
        #[arg(long)]
        json: bool,
        /// Keep listing, refreshing every second, until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// On a zombie: print a one-time 6-digit pairing code (valid 2 minutes, 3 tries).
    PairCode {
        /// The control level a master paired with this code gets.
        #[arg(long, default_value_t = Level::Complete)]
        level: Level,
    },
    /// On a master: pair with a zombie using the code it shows.
    Pair {
        /// The zombie: its name, fingerprint prefix, or ip:port.
        host: String,
        /// The 6-digit code shown by `zos pair-code` on the zombie.
        #[arg(long)]
        code: String,
    },
    /// Manage trust: masters a zombie trusts, or zombies a master paired with.
    Trust {
        /// What to do with it.
        #[command(subcommand)]
        action: TrustAction,
    },
    /// Open a session to a paired zombie and measure round trips.
    Ping {
        /// The zombie: its name, fingerprint prefix, or ip:port.
        host: String,
        /// How many round trips.
        #[arg(long, short = 'c', default_value_t = 1)]
        count: u32,
        /// Seconds between round trips.
        #[arg(long, short = 'i', default_value_t = 1.0)]
        interval: f64,
    },
    /// Start a task on the master; `--shared` runs an X11 app in its own
    /// virtual display (one Xvnc, reachable only through a private socket);
    /// `--migrant` runs a command in a pod that can move to a zombie.
    ///
    /// A migrant runs in its own user, PID, mount and IPC namespaces (the
    /// kernel must allow unprivileged user namespaces when the daemon is not
    /// root), with `zos-pod-init` (installed next to `zos`) as PID 1, in the
    /// directory where `zos run` was typed, with this shell's environment,
    /// on a terminal of its own: `zos attach TASK` shows it, `zos logs TASK`
    /// prints what it wrote. It ends when its command ends (`zos tasks`
    /// shows `exited CODE` for 10 minutes) or when the master daemon stops
    /// (SIGTERM, then SIGKILL 2 s later).
    Run {
        /// Run it as a virtually shared app.
        #[arg(long, conflicts_with = "migrant")]
        shared: bool,
        /// Run it as a migrant task (a pod that can move).
        #[arg(long)]
        migrant: bool,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true, value_name = "COMMAND")]
        argv: Vec<String>,
    },
    /// Take a paired zombie over (master): it mounts the master's shared
    /// folders, may show its shared apps, and keeps a lease while the master
    /// is there.
    ///
    /// The zombie grants at most the level its trust entry for this master
    /// allows; unless it accepts by itself (`--auto-accept`), its user must
    /// accept within 45 s (the prompt window and notification on its
    /// desktop, its tray, or `zos accept` there). Ctrl-C while waiting
    /// withdraws the request at once. One master dominates a zombie at a
    /// time. The zombie mounts this master's exports (`zos export`); its
    /// user chooses whether viewers of the shared apps open. Prints how long
    /// each part of the set-up took (zt: authentication and acceptance, not
    /// counting the user's thinking time; fs: mounting the shared folders;
    /// xt: display set-up).
    Dominate {
        /// The zombie: its name, fingerprint prefix, or ip:port.
        host: String,
        /// The control level asked for.
        #[arg(long, default_value_t = Level::Complete)]
        level: Level,
        /// Move these migrant tasks there right after (comma-separated ids);
        /// prints each one's time (pt) and tm = zt + fs + xt + Σ pt.
        #[arg(long, value_delimiter = ',', value_name = "TASK,…")]
        with_tasks: Vec<u64>,
    },
    /// End a domination: on a master, of the zombie HOST — every migrant
    /// running there comes home first (with progress), its viewers close and
    /// it keeps nothing of this master; on a zombie, its own — the master is
    /// told that this machine's user ended it, and runs its release (its
    /// migrants come home first; the zombie lets go by itself if the master
    /// has not within 60 s).
    Release {
        /// On a master: the zombie (its name, fingerprint prefix, or
        /// ip:port). On a zombie: nothing, or the dominating master's name.
        host: Option<String>,
        /// Release even if a migrant cannot come home: that task is then
        /// `lost`, and `zos home TASK --from-image` restarts it from the
        /// last image this master holds.
        #[arg(long)]
        force: bool,
    },
    /// Move a migrant task to a zombie dominated at level complete.
    ///
    /// The move is live by default: the task's memory is copied while it
    /// runs (round 0 all of it, then round after round what it wrote
    /// meanwhile; pages written are tracked with userfaultfd write-protect,
    /// Linux 6.7 or later), until a round is small enough or rounds stop
    /// shrinking (a task writing about as fast as the link carries; the
    /// progress says why they stopped); only then is it frozen for the rest.
    /// With --stop-and-copy (or on a kernel that cannot track the task's
    /// pages) it is frozen for the whole transfer.
    ///
    /// The task is checked (anything the engine cannot carry is named and the
    /// task runs on), frozen, and its image streamed to the zombie, which
    /// restores it in a pod of its own (the zombie's user, its private places
    /// hidden, this master's exports at the same paths; executables and
    /// libraries it lacks travel too) and holds it stopped; only then does
    /// this master end its copy and let the zombie's run. If anything fails
    /// before that, the task resumes here and the reason is printed; the exit
    /// status is then non-zero. Shows the phase, bytes, rate and time left,
    /// then each phase's time. The image is also kept here (HOME/images) as
    /// the task's last image.
    Migrate {
        /// The task id (see `zos tasks`).
        task: u64,
        /// The zombie: its paired name or fingerprint prefix.
        host: String,
        /// Compression of the image on the link: auto (by this link's rate
        /// and each codec's speed, measured), none, lz4 or zstd.
        #[arg(long, default_value = "auto")]
        compress: zos_netproto::control::Compression,
        /// Freeze the task for the whole transfer instead of copying its
        /// memory while it runs.
        #[arg(long)]
        stop_and_copy: bool,
        /// While the task runs there, the zombie sends a snapshot of it home
        /// this often (incremental after the first: only what it wrote
        /// since), so that `zos home TASK --from-image` after the zombie's
        /// death loses at most that much work. `30s`, `5m`, `1h` or `off`.
        #[arg(long, value_name = "INTERVAL", default_value = "60s", value_parser = parse_interval)]
        image_every: u32,
    },
    /// Bring a migrant task home from the zombie it runs on (the same
    /// fail-safe steps the other way round; live by default, as for
    /// `zos migrate`).
    Home {
        /// The task id (see `zos tasks`).
        task: u64,
        /// For a task lost with its zombie: restart it here from the last
        /// image this master holds (says how old it is; what the task did
        /// since is lost).
        #[arg(long)]
        from_image: bool,
        /// Freeze the task for the whole transfer instead of copying its
        /// memory while it runs.
        #[arg(long, conflicts_with = "from_image")]
        stop_and_copy: bool,
    },
    /// On a master: share a folder with dominated zombies (or hide one).
    ///
    /// The folder appears on each zombie this master dominates, inside the
    /// zombie's mount of the master's shared folders (`zos status` there
    /// shows where). The master checks every request against this list:
    /// nothing outside an export is reachable, symlinks are never followed
    /// on the master, read-only exports refuse writes, and a `--never` path
    /// stays hidden even inside a wider export. Changes apply from the next
    /// domination on.
    Export {
        /// The folder (or, with --never, any path) to share or hide.
        path: PathBuf,
        /// Only for this zombie (its name or fingerprint); default: all.
        #[arg(long, value_name = "HOST")]
        to: Option<String>,
        /// Zombies may read but not change it.
        #[arg(long, conflicts_with = "never")]
        read_only: bool,
        /// Never show this path, even inside a wider export.
        #[arg(long)]
        never: bool,
    },
    /// On a master: list the exports (path, access, for which zombie).
    Exports {
        /// Machine-readable output (a JSON array).
        #[arg(long)]
        json: bool,
    },
    /// On a master: stop sharing (or hiding) a path.
    Unexport {
        /// The path as exported.
        path: PathBuf,
        /// Only its entry for this zombie.
        #[arg(long, value_name = "HOST")]
        to: Option<String>,
    },
    /// On a master: send this machine's keyboard and mouse to the ZOS
    /// session of a dominated zombie (or give them back with --stop).
    ///
    /// The master grabs keyboard and pointer on its own display and shows
    /// where input goes; the zombie plays the events into its ZOS session
    /// only, and the clipboard (CLIPBOARD and PRIMARY text) follows.
    /// Ctrl+Alt+Right / Ctrl+Alt+Left (see HOME/master.toml) cycle through
    /// this master and the zombies that can be driven. The daemon captures
    /// its own DISPLAY, or else the one this command runs in.
    Drive {
        /// The zombie: its paired name or fingerprint prefix.
        #[arg(required_unless_present = "stop", conflicts_with = "stop")]
        host: Option<String>,
        /// Give input back to the master (and forget any --edge).
        #[arg(long)]
        stop: bool,
        /// Do not switch now: switch when the pointer leaves this edge of
        /// the master's screen (left, right, top, bottom), and back when it
        /// leaves the zombie's opposite edge.
        #[arg(long, value_name = "EDGE")]
        edge: Option<String>,
    },
    /// On a zombie: allow or refuse the dominating master's keyboard and
    /// mouse in the ZOS session (also `allow_input` in HOME/zombie.toml).
    Input {
        /// `allow` or `refuse`.
        #[arg(value_enum)]
        choice: InputChoice,
    },
    /// On a zombie: accept the domination request waiting for an answer.
    Accept,
    /// On a zombie: refuse the domination request waiting for an answer.
    Refuse,
    /// Open a viewer for a shared app; on a zombie, for an app of the master
    /// dominating it (its frames and your input travel through the session).
    View {
        /// The task id (see `zos tasks`).
        task: u64,
        /// Do not open a window: save the app's current screen as a PNG file
        /// and exit.
        #[arg(long, value_name = "FILE")]
        snapshot: Option<PathBuf>,
        /// Show the app's whole display in one window, instead of each of
        /// its windows as a window of its own.
        #[arg(long)]
        desktop: bool,
        /// Resizing a viewer window resizes the app's window (with
        /// --desktop, its display) instead of scaling the picture.
        #[arg(long)]
        resize_remote: bool,
    },
    /// List the master's tasks: id, kind (shared or migrant), where it runs,
    /// state (running, home, moving, lost, exited CODE), since when, command;
    /// on a zombie, the tasks the dominating master shares.
    Tasks {
        /// Machine-readable output (a JSON array).
        #[arg(long)]
        json: bool,
    },
    /// Show a migrant task's terminal live and type into it, wherever the
    /// task runs. Starts with its recent output and makes it redraw; follows
    /// this terminal's size. Ctrl-] detaches (the task runs on).
    Attach {
        /// The task id (see `zos tasks`).
        task: u64,
    },
    /// Print what a migrant task wrote to its terminal so far (the last
    /// 8–16 MiB are kept).
    Logs {
        /// The task id (see `zos tasks`).
        task: u64,
        /// Keep printing new output until the task ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Stop the local daemon.
    ///
    /// On a master with running tasks it says what would end and asks (or,
    /// without a terminal, needs --force): shared apps and migrants at home
    /// end with the daemon. With --keep-apps the shared apps run on under
    /// their supervisors and the next daemon adopts them (same task ids).
    Stop {
        /// Stop without asking, ending the tasks.
        #[arg(long)]
        force: bool,
        /// Leave the shared apps running (for a restart or an upgrade).
        #[arg(long)]
        keep_apps: bool,
    },
    /// Open the master window on the local master daemon: zombies as icons
    /// (pair, ping, dominate, release, drive) and tasks as tiles (View opens
    /// a shared app's viewer; drag a migrant onto a host to move it there,
    /// onto the master's own icon to bring it home).
    Gui,
    /// Run the zombie's tray helper (StatusNotifierItem: state, pairing code,
    /// domination requests to accept, the master's shared apps to view,
    /// Release).
    Tray,
    /// On a zombie: open its status window (who dominates it, at what
    /// level, the master's apps to view, Release). The zombie opens it by
    /// itself while dominated (`status_window` in HOME/zombie.toml).
    ZombieWindow,
    /// On a zombie: ask this machine's user about the domination request
    /// waiting (a window and a desktop notification); the zombie daemon
    /// starts it by itself.
    #[command(hide = true)]
    ConsentPrompt,
    /// Internal: supervise one shared app (the master daemon starts these;
    /// the spec comes on stdin).
    #[command(hide = true)]
    SuperviseApp,
    /// Run a master, a local demo zombie paired with it, and the master window.
    Demo {
        /// Restrict mDNS to this interface (default: lo, so the demo stays on this machine).
        #[arg(long = "interface", value_name = "IF", default_values_t = ["lo".to_string()])]
        interfaces: Vec<String>,
        /// Do not open the window; run until interrupted.
        #[arg(long)]
        headless: bool,
    },
    /// Checkpoint a running process to an image directory (it ends, unless --leave-running).
    ///
    /// The process is frozen, its memory, threads, files and attributes are
    /// written to DIR/image.zckpt (versioned, checksummed, mode 0600), then it
    /// is ended. The image of another user's process is signed with this
    /// machine's image key (HOME/image.key, made on first use), which root
    /// needs to restore it under that user's credentials. A process that
    /// cannot be saved is refused with every reason and left running
    /// untouched. Needs root.
    Checkpoint {
        /// The process.
        #[arg(required_unless_present = "task")]
        pid: Option<i32>,
        /// The image directory: created mode 0700 if missing; an existing one
        /// must be a real directory (not a symbolic link) of yours that group
        /// and others cannot write.
        #[arg(long, value_name = "DIR", required_unless_present = "check")]
        out: Option<PathBuf>,
        /// Let the process run on after the checkpoint (a snapshot).
        #[arg(long)]
        leave_running: bool,
        /// Only say whether the process can be checkpointed, and why not.
        #[arg(long, conflicts_with_all = ["out", "leave_running"])]
        check: bool,
        /// Checkpoint a migrant task (its whole pod, at home) through the
        /// daemon instead of a process; it runs on (DIR/image.zckpt).
        #[arg(long, value_name = "TASK", conflicts_with_all = ["pid", "check", "leave_running"])]
        task: Option<u64>,
    },
    /// Restore a process from an image directory and print its PID.
    ///
    /// The process gets the same PID when that PID is free, runs detached
    /// from `zos`, and continues from where it was checkpointed. An image is
    /// not consumed: it can be restored again once the first copy has exited.
    /// Standard streams that were a terminal or pipe are attached to the files
    /// given here (default /dev/null).
    ///
    /// Anyone may restore an image of a process with their own credentials.
    /// Other credentials need root and an image signed by this machine (see
    /// `zos checkpoint`); anything else is refused, naming what differs. The
    /// image is validated completely before anything is created. While the
    /// original process still runs (same PID, start time and boot) the restore
    /// is refused unless --force.
    Restore {
        /// The image directory: yours or root's, not writable by group or
        /// others, not a symbolic link.
        dir: PathBuf,
        /// File for standard input.
        #[arg(long, value_name = "FILE")]
        stdin: Option<PathBuf>,
        /// File for standard output (created or appended).
        #[arg(long, value_name = "FILE")]
        stdout: Option<PathBuf>,
        /// File for standard error (created or appended).
        #[arg(long, value_name = "FILE")]
        stderr: Option<PathBuf>,
        /// Restore even though the original process still runs: a second copy,
        /// under a new PID.
        #[arg(long)]
        force: bool,
    },
    /// Measure performance and print figures.
    Bench {
        /// Which benchmark.
        #[command(subcommand)]
        which: BenchKind,
    },
    /// Snapshot a migrant task while it runs on, at home or on its zombie (or on a schedule).
    ///
    /// The first snapshot of a task is whole; the next ones are incremental:
    /// only the memory pages the task wrote since the previous snapshot
    /// (tracked by the kernel's userfaultfd write-protection while it runs).
    /// Prints the snapshot's number, whole or incremental, its size and how
    /// long the task was stopped. Snapshots are kept on the master in
    /// HOME/snapshots/task-<ID>/ (directory 0700; one file per snapshot,
    /// NNNN-NAME.zpod or NNNN.zpod, 0600; index.json lists them) and
    /// survive restarts of the daemon and of the machine. Files the task
    /// wrote (in exports or anywhere else) are not part of a snapshot.
    ///
    /// --every D snapshots it every D (30s, 10m, 2h, 1d) while it runs at
    /// home (also after a suspend, a restart of the daemon and a resume),
    /// keeping a rolling set of --keep N: the newest N scheduled
    /// snapshots stay restorable. A chain (a whole snapshot and the
    /// incremental ones after it) is kept or removed as one: after N
    /// snapshots in a chain the next is whole again, and a chain goes once
    /// the newest N no longer build on it (at most 2N-1 on disk). Chains
    /// holding a snapshot taken by hand are never removed. --every off
    /// stops the schedule; it needs the task at home.
    ///
    /// Of a task away on a zombie, the zombie takes the snapshot (the task
    /// runs on there) and sends it home, where it is kept as a whole one; a
    /// rollback to it needs the task at home (zos home TASK).
    Snapshot {
        /// The task id (see `zos tasks`).
        task: u64,
        /// A name to roll back to it by (letters, digits, '.', '_', '-').
        #[arg(long, conflicts_with = "every")]
        name: Option<String>,
        /// Snapshot it every DURATION (30s, 10m, 2h, 1d), or `off`.
        #[arg(long, value_name = "DURATION")]
        every: Option<String>,
        /// With --every: how many scheduled snapshots stay restorable.
        #[arg(long, default_value_t = 10, requires = "every")]
        keep: u32,
    },
    /// List a migrant task's snapshots: number, name, age, size (what a
    /// rollback reads: its file and those it builds on), its own file's size
    /// for an incremental one, kind, and how long the task was stopped.
    ///
    /// --prune removes the snapshots of tasks this master no longer has
    /// (neither running nor suspended); they are otherwise kept, also after
    /// the task ended.
    Snapshots {
        /// The task id.
        #[arg(required_unless_present = "prune")]
        task: Option<u64>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Remove the snapshots of tasks that are gone.
        #[arg(long, conflicts_with = "task")]
        prune: bool,
    },
    /// Bring a migrant task back to one of its snapshots.
    ///
    /// The snapshot (and the chain it builds on) is restored first; only
    /// then does the running copy end and the restored one take its place,
    /// with the same task id and terminal (`zos attach` goes on). If the
    /// restore fails, the task runs on untouched. Its memory, processes and
    /// terminal state go back; its files do NOT: what it wrote to files
    /// (in exports or anywhere else) since the snapshot stays as it is.
    Rollback {
        /// The task id.
        task: u64,
        /// The snapshot: its number or its name (see `zos snapshots TASK`).
        snapshot: String,
    },
    /// Snapshot every migrant task at home, then stop it (the master is then
    /// ready to power off).
    ///
    /// Each task is frozen, saved (incrementally when it has snapshots
    /// already) and ended; it stays listed by `zos tasks` as suspended, also
    /// after the master daemon restarts (HOME/snapshots/suspended.json),
    /// until `zos resume` brings it back. Tasks away on zombies come home
    /// first (live, with their progress shown); one that cannot is named
    /// and keeps running where it is.
    Suspend,
    /// Bring suspended migrant tasks back from the snapshot taken when they
    /// were suspended (all of them, or those named): on this master, or with
    /// --on on a zombie it dominates at complete (each is restored here, then
    /// moved there live, with its progress shown).
    ///
    /// A task that cannot move runs on here, and the command says so and fails.
    Resume {
        /// Task ids (default: every suspended task).
        tasks: Vec<u64>,
        /// Run them on this zombie (its paired name or fingerprint, as `zos
        /// migrate` takes it) instead of on the master.
        #[arg(long, value_name = "HOST")]
        on: Option<String>,
    },
}

/// `zos input …`
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputChoice {
    /// The master may drive the ZOS session.
    Allow,
    /// It may not; what it sends is dropped.
    Refuse,
}

/// `zos trust …`
#[derive(Subcommand, Debug)]
pub enum TrustAction {
    /// List entries.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove an entry by key, fingerprint prefix or name; its live sessions end at once.
    Revoke {
        /// Key, fingerprint (prefix of at least 4 hex digits) or name.
        what: String,
    },
}

/// `zos bench …`
#[derive(Subcommand, Debug)]
pub enum BenchKind {
    /// Noise handshake time and one channel's throughput and CPU per GB,
    /// against plain TCP and an `ssh -L` tunnel, on loopback.
    Net {
        /// Bytes to move per throughput run, in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        /// Repetitions (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Checkpoint and restore of processes with 1 GiB and 4 MiB of dirty
    /// memory to tmpfs: times, frozen time, image size, peak memory (median of 5).
    Checkpoint,
    /// Shared-app views: key-to-pixel latency, frames per second and bytes per frame of a
    /// full-screen animation, CPU per viewer (window and decode only), a second viewer's cost;
    /// and seamless viewer windows, one to one and scaled, of a large and a small app.
    Display {
        /// Repetitions (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Seconds each rate is measured for.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Only the seamless viewer windows' figures (through a session).
        #[arg(long)]
        windows_only: bool,
        /// Internal: be a viewer window of this RFB socket (the benchmark starts these).
        #[arg(long, hide = true)]
        viewer_socket: Option<std::path::PathBuf>,
        /// Internal: be the animated test app on $DISPLAY.
        #[arg(long, hide = true)]
        animate: bool,
        /// Internal: the animated window's size, WIDTHxHEIGHT (default: the screen's).
        #[arg(long, hide = true, requires = "animate")]
        animate_size: Option<String>,
        /// Internal: be a fan-out of this RFB socket (the benchmark starts these).
        #[arg(long, hide = true, requires = "fanout_listen")]
        fanout_of: Option<std::path::PathBuf>,
        /// Internal: where that fan-out serves its viewers.
        #[arg(long, hide = true)]
        fanout_listen: Option<std::path::PathBuf>,
    },
    /// Shared folders against sshfs on loopback (as root): 512 MiB write +
    /// fsync, cold read, create+stat+delete of small files (median of runs).
    Fs {
        /// Size of the big file, in MiB.
        #[arg(long, default_value_t = 512)]
        mib: u64,
        /// How many small files.
        #[arg(long, default_value_t = 5000)]
        files: usize,
        /// Repetitions (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Migrant moves between a master and a zombie daemon on this machine:
    /// total time, time stopped and transfer rate (against the session's own
    /// throughput) per size and codec, there and back; then the time to
    /// dominate a zombie with 1–16 tasks (tm = zt + fs + xt + Σ pt) as a
    /// table and a PNG plot. Run it as root in a fresh network namespace.
    ///
    /// With --live: live moves of a task dirtying 0, 10 and 100 MiB/s (the
    /// first of --sizes, default 1 GiB): the final stop as the migrator
    /// measured it and as the task saw it (the longest gap between its 1 ms
    /// ticks during the move), the total time and the pre-copy rounds.
    Migrate {
        /// Repetitions (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Live moves of a dirtying task instead (see above).
        #[arg(long)]
        live: bool,
        /// Task memory sizes, in MiB (--live: default 1024).
        #[arg(long, value_delimiter = ',')]
        sizes: Vec<u32>,
        /// Where the plot goes.
        #[arg(long, default_value = "zos-bench-migrate.png")]
        png: std::path::PathBuf,
    },
    /// Input redirection against Barrier 2.4, in one run, across two network
    /// namespaces (as root): key latency from the master's display to the
    /// zombie's session (median, p99, and the floor of the far display
    /// alone), pointer motion at a mouse's rate and as fast as possible
    /// (loss, order, drift).
    Input {
        /// Keys measured one at a time.
        #[arg(long, default_value_t = 500)]
        samples: usize,
        /// Seconds of paced pointer motion.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Pointer motions per second (a 1000 Hz mouse).
        #[arg(long, default_value_t = 1000)]
        rate: u32,
    },
    /// Snapshots of a migrant on a master daemon started for the run: the
    /// time the task is stopped for its first (whole) snapshot and for an
    /// incremental one after it changed --changed-mib, with the bytes
    /// written. Run it as root.
    Snapshot {
        /// The task's memory, in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u32,
        /// Memory the task changes between two snapshots, in MiB.
        #[arg(long, default_value_t = 10)]
        changed_mib: u32,
        /// Incremental snapshots measured (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Time from starting a zombie to the master seeing it over mDNS.
    Discovery {
        /// Repetitions (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// mDNS interface to use.
        #[arg(long = "interface", default_value = "lo")]
        interface: String,
    },
}

impl Command {
    /// Whether this command runs a long-lived daemon (logs at info).
    pub fn is_daemon(&self) -> bool {
        matches!(
            self,
            Command::Master { .. }
                | Command::Zombie { .. }
                | Command::Demo { .. }
                | Command::SuperviseApp
        )
    }
}

/// `30s`, `5m`, `1h`, a number of seconds, or `off` (0).
fn parse_interval(s: &str) -> Result<u32, String> {
    if s == "off" {
        return Ok(0);
    }
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u32 = num
        .parse()
        .map_err(|_| format!("{s:?} is not an interval like 30s, 5m, 1h or off"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
    .filter(|&v| v >= 1)
    .ok_or_else(|| format!("{s:?} is not an interval like 30s, 5m, 1h or off"))?;
    Ok(secs)
}
