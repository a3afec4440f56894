/**
 * k6/x/cdeload — scale-test cloud development environments from k6-style
 * scripts: workspaces (Coder or the embedded lab), tailnet dialing, SSH and
 * web-terminal echo streams with true round-trip latency.
 *
 * ```js
 * import cde from 'k6/x/cdeload';            // default export
 * import { Tailnet, Coder, ssh, lab } from 'k6/x/cdeload'; // or named
 * ```
 *
 * Rules that hold for the whole module:
 *
 * - Every method that touches the network returns a Promise. Calling one in
 *   the init context throws; constructors (`new Tailnet`, `new Coder`) do not
 *   touch the network and may run there.
 * - Each call uses the VU's context of the moment: when the iteration ends,
 *   the work is cancelled and the promise rejects.
 * - A failed call rejects with an `Error` whose `message` starts with the
 *   operation (e.g. `tailnet.dial("ws-1", 22): ...`) and whose `op` property
 *   is that operation.
 * - Options objects are strict: an unknown key or a bad value throws an
 *   `Error` naming the key, the value and what is allowed.
 * - Durations are strings such as `"100ms"`, `"30s"`, `"2m"`, or numbers of
 *   milliseconds.
 * - With nothing configured, everything targets the embedded lab, started
 *   in-process on the first network call that needs it.
 *
 * Metrics (the names are a contract):
 *
 * | metric | type | tags |
 * |---|---|---|
 * | `workspace_build_duration`, `workspace_agent_connect_duration`, `workspace_ready_duration`, `workspace_delete_duration` | Trend (time) | |
 * | `workspace_failed` | Rate | `reason` (Kubernetes: the pod's `Unschedulable`, `ImagePullBackOff`, `CrashLoopBackOff`, `OOMKilled`) |
 * | `workspace_pod_schedule_duration`, `workspace_pod_start_duration` | Trend (time), Kubernetes only: pod created → `PodScheduled`, `PodScheduled` → `ContainersReady` | |
 * | `workspace_pods_pending` | Gauge, Kubernetes only: this run's Pending pods, every second | |
 * | `tailnet_up_duration` | Trend (time), once per node started | |
 * | `tailnet_dial_duration` | Trend (time) | `path` = `direct` \| `derp` |
 * | `ssh_connect_duration` | Trend (time): tailnet dial + SSH handshake + session | |
 * | `traffic_rtt` | Trend (time), one sample per echoed frame | `transport` = `ssh` \| `terminal` |
 * | `traffic_bytes_sent`, `traffic_bytes_received` | Counter (data): echo payload bytes | `transport` |
 * | `traffic_ticks_missed`, `traffic_errors` | Counter | `transport` |
 *
 * Bytes moved over tailnet connections are also counted in the built-in
 * `data_sent` / `data_received`. Samples carry the VU's tags as they were
 * when the method was called; the workspace name, host and agent ID are
 * sample metadata (`workspace`, `host`, `agent_id`), never tags.
 *
 * @module k6/x/cdeload
 */

/** A duration: `"100ms"`, `"30s"`, `"1m30s"`, or a number of milliseconds. */
export type Duration = string | number;

/** How packets to a peer travel. */
export type Path = 'direct' | 'derp' | 'unknown';

/** Options of {@link Tailnet}. */
export interface TailnetOptions {
  /**
   * Coordination server URL. Default: `TS_CONTROL_URL` from `__ENV`; else
   * the lab at `CDELOAD_LAB_URL`; else the embedded lab.
   */
  controlURL?: string;
  /** Pre-authorised key. Default: `TS_AUTHKEY` (or the lab's key). */
  authKey?: string;
  /**
   * Host name the node presents. Default `"cdeload"` for a shared node,
   * `"cdeload-vu<N>-<n>"` for a node of its own.
   */
  hostname?: string;
  /**
   * Share one node per process and configuration between all VUs (default
   * true; scales to thousands of VUs). With false, this object joins with a
   * node of its own (about 5 MB and hundreds of ms of control-plane work per
   * node), which measures one join per VU.
   */
  shared?: boolean;
  /**
   * Relay all traffic through DERP, never direct UDP. This is process-wide:
   * it must be set before any node of the process starts (create the Tailnet
   * in the init context) and then applies to every node, including the
   * embedded lab's workspaces.
   */
  derpOnly?: boolean;
  /** Bound on joining the tailnet (default `"2m"`). */
  timeout?: Duration;
}

/** Result of {@link Tailnet.up}. */
export interface UpResult {
  /** Node start → running with a home DERP (the node's, even if shared). */
  durationMs: number;
  /** Region ID of the node's home DERP. */
  homeDerp: number;
  /** The node's tailnet addresses. */
  ips: string[];
  hostname: string;
}

/** Result of {@link Tailnet.dial}. */
export interface DialResult {
  /** Path right after the connection was made. */
  path: Path;
  /** Time to connect, including the wait for the peer to appear. */
  durationMs: number;
  /** Tailnet IP that was dialled. */
  address: string;
}

/**
 * A tailnet node (a tsnet node). Joined on the first network call and kept
 * across iterations until {@link close}; shared VUs release their reference
 * on close, and the module releases what is left at the end of the run.
 */
export class Tailnet {
  constructor(options?: TailnetOptions);
  readonly hostname: string;
  readonly shared: boolean;
  /**
   * Joins (if not yet) and resolves how the node joined. Emits
   * `tailnet_up_duration` once per node actually started.
   */
  up(): Promise<UpResult>;
  /**
   * Reachability probe: connects to `host:port` over the tailnet, emits
   * `tailnet_dial_duration{path}`, and closes the connection. `host` is a
   * tailnet IP or a peer's name. A host that is not a peer rejects once
   * `timeout` (default `"30s"`) runs out.
   */
  dial(host: string, port: number, options?: { timeout?: Duration }): Promise<DialResult>;
  /** How traffic to the peer flows now (`unknown` before any traffic). */
  path(host: string): Promise<Path>;
  /** Leaves the tailnet (or releases the shared node). Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link ssh.connect}. */
export interface SSHConnectOptions {
  /**
   * The tailnet to dial through. Default: a shared Tailnet with default
   * options, made for the VU on first use.
   *
   * A workspace of a Coder deployment (its `address` from
   * `coder.createWorkspace` or `coder.workspaces`) is always reached over
   * that deployment's own tailnet, whatever this option says; so is a
   * workspace of the lab's Coder simulator, which serves the same
   * endpoints. The process keeps one Coder-mode node per deployment (URL
   * and token of the `Coder` object), shared by every VU and workspace. It
   * fetches the DERP map from coderd, coordinates with each agent over
   * coderd's coordination websocket and relays WireGuard through coderd's
   * DERP relay (or directly, where the deployment allows it); it emits
   * `tailnet_up_duration` once, and `tailnet_dial_duration{path}` per
   * connection.
   */
  tailnet?: Tailnet;
  /** Tailnet IP or workspace name (required). */
  host: string;
  /** Default 22; 1 (the agent's SSH server) for a real Coder workspace. */
  port?: number;
  /**
   * Remote user. Required unless the tailnet is a lab's (embedded or
   * `CDELOAD_LAB_URL`): then the lab's user (`coder`), key and host key are
   * the defaults. For a real Coder workspace it defaults to `coder`, and
   * no key, password or host key policy is needed: the agent's SSH server
   * accepts every client of the tailnet (the tailnet is the
   * authentication).
   */
  user?: string;
  /** Unencrypted private key, PEM or OpenSSH format (e.g. from `open()`). */
  privateKey?: string;
  /** Password (tried after the key). */
  password?: string;
  /** Accept only this host key, authorized_keys form (`"ssh-ed25519 AAAA..."`). */
  hostKey?: string;
  /** OpenSSH known_hosts file, looked up for `host` (and port when not 22). */
  knownHostsFile?: string;
  /** Accept any host key. For labs and tests only. */
  insecureSkipHostKeyCheck?: boolean;
  /** Bound on joining the tailnet (if not joined yet) + dial + handshake + first session (default `"30s"`). */
  timeout?: Duration;
}

/** Result of {@link SSHSession.run}. */
export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit status; 128 + signal number when killed by a signal. */
  exitCode: number;
  /** Signal name without "SIG", or "". */
  signal: string;
  /** Set when stdout or stderr exceeded 1 MiB and was cut. */
  truncated: boolean;
  durationMs: number;
}

/** Options of an echo stream. Set `duration` or `bytes`, not both. */
export interface EchoOptions {
  /** Frame size in bytes (default 128; at least 46: a 45-byte header and a newline). */
  bytesPerTick?: number;
  /** Time between frames (default `"100ms"`). */
  tickInterval?: Duration;
  /** How long to send (default `"60s"` when `bytes` is not set). */
  duration?: Duration;
  /** Send ceil(bytes / bytesPerTick) frames, then stop. */
  bytes?: number;
  /**
   * Bound on waiting for the last frames after the last send, and during the
   * stream for any frame to come back while some are outstanding (a far end
   * that stopped answering fails the stream with an error) (default `"10s"`).
   */
  drainTimeout?: Duration;
}

/** Echo options of an SSH session. */
export interface SSHEchoOptions extends EchoOptions {
  /** Request a pseudo-terminal (raw mode) for the echo command. */
  pty?: boolean;
  /** Remote command that copies stdin to stdout (default `"cat"`). */
  command?: string;
}

/** Round-trip statistics of one stream, in milliseconds. */
export interface RTTStats {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/**
 * Summary of an echo stream. A stream error (far end closed, corrupt frame,
 * frames not back in time) resolves with `errors: 1` and the message in
 * `error`, and counts in `traffic_errors`; a bad configuration or the end of
 * the iteration rejects.
 */
export interface EchoResult {
  framesSent: number;
  framesReceived: number;
  /** Payload bytes of the measured frames written / read back (framesSent × bytesPerTick when nothing failed; the warm-up frame is not counted). */
  bytesSent: number;
  bytesReceived: number;
  /** Ticks that could not be sent on time (never sent late). */
  ticksMissed: number;
  /** Second copies of frames (a terminal's own echo). */
  duplicates: number;
  errors: number;
  error?: string;
  durationMs: number;
  rtt: RTTStats;
}

/** An SSH connection to a workspace. */
export interface SSHSession {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Tailnet path right after the dial. */
  readonly path: Path;
  readonly serverVersion: string;
  readonly connectDurationMs: number;
  /** Runs a command with empty stdin; a non-zero exit resolves with its exitCode. */
  run(command: string, options?: { timeout?: Duration }): Promise<RunResult>;
  /**
   * Echo stream: writes one frame per tick to `cat` and measures each
   * frame's round trip, emitting `traffic_rtt{transport:ssh}` and the
   * traffic counters as it goes (flushed before the promise settles).
   */
  echo(options?: SSHEchoOptions): Promise<EchoResult>;
  /** Closes the connection. Idempotent. */
  close(): Promise<void>;
}

/** SSH over the tailnet. */
export const ssh: {
  /**
   * Dials over the tailnet and opens an SSH session; emits
   * `ssh_connect_duration`. For a workspace of a real Coder deployment it
   * joins that deployment's tailnet (see {@link SSHConnectOptions.tailnet});
   * an echo stream to it that fails names the workspace in `error`.
   */
  connect(options: SSHConnectOptions): Promise<SSHSession>;
};

/** A lab workspace and its SSH credentials. */
export interface LabWorkspace {
  name: string;
  /** Tailnet IPv4 address. */
  address: string;
  /** `address:22`. */
  sshAddress: string;
  user: string;
  privateKey: string;
  /** authorized_keys form. */
  hostKey: string;
  /** A known_hosts line for the address and the name. */
  knownHosts: string;
}

/**
 * Workspaces without a Coder deployment: simulated workspaces of the
 * embedded lab, or of a standalone `cdeload lab` when `CDELOAD_LAB_URL` is
 * set (workspaces this run leaves running there are stopped at the end).
 */
export const lab: {
  /** Starts a workspace (name: 1-63 of a-z, 0-9, '-'; generated by default). */
  startWorkspace(options?: { name?: string }): Promise<LabWorkspace>;
  /** Stops a workspace by name. */
  stopWorkspace(name: string): Promise<void>;
};

/** Options of {@link Coder}. */
export interface CoderOptions {
  /**
   * Deployment URL. Default `CODER_URL`; with neither, the Coder API of the
   * lab at `CDELOAD_LAB_URL`, else of the embedded lab. Lab workspaces are
   * real tailnet nodes: SSH to `ws.address` works with the lab's
   * credentials, and so does the web terminal.
   */
  url?: string;
  /** Session token of an owner. Default `CODER_SESSION_TOKEN`. */
  token?: string;
  /** Send `X-Coder-Bypass-Ratelimit: true` (owners only). */
  bypassRateLimit?: boolean;
  /** Organization name or ID (default: the default organization). */
  organization?: string;
  /** `"per-workspace"` (default: one scaletest user per workspace) or `"me"`. */
  users?: 'per-workspace' | 'me';
  /** Retries of a failed start build (default 0). */
  retries?: number;
  /** Status poll interval (default `"500ms"`). */
  pollInterval?: Duration;
  /** Bound on one build (default `"10m"`). */
  buildTimeout?: Duration;
  /** Bound on agents connecting after the build (default `"5m"`). */
  agentTimeout?: Duration;
  /** Bound on one delete (default `"10m"`). */
  deleteTimeout?: Duration;
  /** Ready when the build succeeded, without waiting for agents. */
  noWaitForAgents?: boolean;
  /** Wait for agents to connect, not for their lifecycle to be ready. */
  ignoreLifecycle?: boolean;
  /**
   * Bound on each HTTP request to Coder, answer included (default `"30s"`);
   * a request without an answer in time fails with "no answer from <url> in
   * <t>" (GET and DELETE are retried first).
   */
  requestTimeout?: Duration;
  /**
   * Removals `cleanup()` requests at once, across every VU's workspaces of
   * the deployment (default 16). A slot is held until a delete is under way,
   * not while waiting for the workspace to go.
   */
  cleanupConcurrency?: number;
  /**
   * The namespace where the deployment runs its workspace pods: each
   * workspace's pod (matched by Coder's `com.coder.workspace.id` label) is
   * timed through one shared informer per process (list + watch, no
   * polling), emitting `workspace_pod_schedule_duration`,
   * `workspace_pod_start_duration` and `workspace_pods_pending`; a pod that
   * never became ready puts its reason in the error and in the `reason` tag
   * of `workspace_failed`. Needs get, list and watch on pods.
   */
  kubernetes?: KubernetesClusterOptions;
}

/** Where workspace pods run. */
export interface KubernetesClusterOptions {
  /** Namespace of the workspace pods (required). */
  namespace: string;
  /** Kubeconfig file (default `KUBECONFIG`, then `~/.kube/config`, then the in-cluster service account). */
  kubeconfig?: string;
  /** Kubeconfig context (default: its current context). */
  context?: string;
  /** Label selector of the pods (default `app.kubernetes.io/name=coder-workspace`; Coder mode only). */
  selector?: string;
}

/** Options of {@link Kubernetes}: the cluster, and one of `podTemplate` and `image`. */
export interface KubernetesOptions extends Omit<KubernetesClusterOptions, 'selector'> {
  /**
   * The Pod of each workspace, as YAML or JSON text (e.g. `open('pod.yaml')`)
   * or an object; its name, namespace and the run's labels are filled in.
   */
  podTemplate?: string | object;
  /** An image: each workspace is a Pod with one container running it. */
  image?: string;
  /**
   * SSH user of the workspaces, exposed as `ws.sshUser`; the default `user`
   * of `ssh.connect({ host: ws.address })` (or `host: ws.name`).
   */
  sshUser?: string;
  /**
   * SSH private key of the workspaces (unencrypted, PEM or OpenSSH text, as
   * `ssh.connect`'s `privateKey`; e.g. `open('id_ed25519')`): the default key of
   * `ssh.connect` to them. It is a secret: never shown in errors nor on the
   * workspace object. `ssh.connect`'s own `user`, `privateKey` or `password` win.
   */
  sshKey?: string;
  /**
   * Owners of each workspace pod (`metadata.ownerReferences`), parsed strictly:
   * the garbage collector deletes the pods with their owner. The owner must be
   * in the workspaces' namespace. Default: in a k6-operator runner pod whose
   * downward API sets `POD_NAME` and `POD_UID`, that pod (not when
   * `POD_NAMESPACE` is set to another namespace: set it, since a pod of another
   * namespace cannot own them); otherwise none. Given, it replaces the default.
   */
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
  /**
   * The tailnet the pods join: `address` is then the pod's tailnet address.
   * Once the pod is ready, `createWorkspace` waits (within its `timeout`)
   * until a peer with the pod's name as host name is on this tailnet; use
   * `ssh.connect({ tailnet, host: ws.address })`. A pod joins by running
   * tailscale itself (e.g. a `tailscale/tailscale` sidecar with `TS_AUTHKEY`
   * from a Secret and `TS_USERSPACE=true`), keeping its default host name,
   * the pod name (or `TS_HOSTNAME` from the downward API's `metadata.name`),
   * with its SSH server listening on the tailnet address. The lab kubelet
   * joins a pod with a `TS_AUTHKEY` container to the lab's tailnet. A pod
   * that is not a peer in time fails with "did not join the tailnet".
   */
  tailnet?: Tailnet;
}

/** A plain Kubernetes workspace (a Pod) that is ready. */
export interface KubernetesWorkspace {
  /** The pod's name: `scaletest-<runid>-<n>`. */
  readonly name: string;
  /** The pod's UID. */
  readonly id: string;
  /**
   * The pod IP, or with the `tailnet` option the pod's tailnet address (with
   * `cdeload lab --kubernetes`, a pod without a tailscale container has its
   * lab workspace's tailnet address as pod IP).
   */
  readonly address: string;
  /** The pod IP (`status.podIP`). */
  readonly podIP: string;
  readonly sshUser: string;
  readonly timings: { readyMs: number; podScheduleMs: number; podStartMs: number };
  /** Deletes the pod (foreground propagation) and waits until it is gone; emits `workspace_delete_duration`. */
  delete(options?: { timeout?: Duration }): Promise<void>;
}

/**
 * Plain Kubernetes workspaces (no Coder), one Pod each. A workspace costs
 * two API requests (create, delete); readiness and deletion come from the
 * process's shared informer. Needs get, list, watch, create and delete on
 * pods (see the README's RBAC section).
 */
export class Kubernetes {
  constructor(options: KubernetesOptions);
  /**
   * Creates a pod and waits until its containers are ready, emitting
   * `workspace_pod_schedule_duration`, `workspace_pod_start_duration`,
   * `workspace_ready_duration` and `workspace_failed` (with the pod's `reason`).
   */
  createWorkspace(options?: { name?: string; timeout?: Duration }): Promise<KubernetesWorkspace>;
  /**
   * Deletes every pod of this run in the namespace and waits until they are
   * gone (closing the module does it too, after Ctrl-C as well).
   */
  cleanup(): Promise<void>;
}

/** Options of {@link Coder.createWorkspace}. */
export interface CreateWorkspaceOptions {
  /** Template name (required). */
  template: string;
  /** Rich parameter values; values are converted to strings. Others take defaults. */
  parameters?: Record<string, string | number | boolean>;
  /** Workspace name (default `scaletest-<runid>-<n>`). */
  name?: string;
  /** Bound on create + wait until ready (default `"15m"`). */
  timeout?: Duration;
}

/**
 * Options of {@link Coder.workspaces}. The filters combine (AND); `owner`,
 * `name`, `prefix` and `template` are single words (no spaces, quotes or
 * `:`), compared case-insensitively as Coder's search does.
 */
export interface FindWorkspacesOptions {
  /** Owner's username, or `"me"` (the token's user). Coder's `owner:` term. */
  owner?: string;
  /** Exact workspace name (cannot be combined with `prefix`). */
  name?: string;
  /** Workspace names starting with this, e.g. `"scaletest-"`. */
  prefix?: string;
  /** Template name. Coder's `template:` term. */
  template?: string;
  /**
   * More of Coder's workspace search query (the `q` of `GET
   * /api/v2/workspaces`), e.g. `"status:running has-agent:connected"`;
   * coderd rejects a term it does not know, and the promise rejects with its
   * answer. Note that Coder's `name:` term matches a substring.
   */
  query?: string;
  /** At most this many workspaces, the first coderd lists (1 to 100000; default all). */
  limit?: number;
  /** Bound on listing (default `"2m"`). */
  timeout?: Duration;
}

/** A web-terminal (reconnecting PTY) session running `cat` in a tty. */
export interface TerminalSession {
  readonly workspace: string;
  /** Echo stream through the terminal: `traffic_rtt{transport:terminal}`. */
  echo(options?: EchoOptions): Promise<EchoResult>;
  close(): Promise<void>;
}

/** A Coder workspace that is ready. */
export interface Workspace {
  readonly name: string;
  readonly id: string;
  readonly owner: string;
  readonly template: string;
  /** Tailnet address of the first agent; `""` when it has none (stopped, failed…). */
  readonly address: string;
  /** ID of the first agent; `""` when it has none. */
  readonly agentId: string;
  /**
   * Coder's workspace status after the latest build: `"running"`,
   * `"stopped"`, `"starting"`, `"failed"`…; only `"running"` workspaces
   * have an agent to connect to.
   */
  readonly status: string;
  /**
   * True when the object came from {@link Coder.workspaces} (a workspace
   * this run did not create): `delete()` rejects, and `cleanup()` and the
   * end of the run leave it alone (`stop()` and `start()` still work: they
   * change someone's workspace, only when the script asks).
   */
  readonly existing: boolean;
  /**
   * Whether `ssh.connect` can reach this workspace: true when it has an
   * agent (over the lab's tailnet for a lab workspace, over the Coder
   * deployment's own tailnet otherwise).
   */
  readonly sshSupported: boolean;
  /** Phase durations of the create (zero for an existing workspace). */
  readonly timings: { buildMs: number; agentConnectMs: number; readyMs: number };
  /**
   * Deletes the workspace and waits until it is gone; emits
   * `workspace_delete_duration`. Rejects for an `existing` workspace:
   * cdeload deletes only the workspaces it created.
   */
  delete(options?: { timeout?: Duration }): Promise<void>;
  stop(options?: { timeout?: Duration }): Promise<void>;
  /** Starts a stopped workspace and waits until it is ready again. */
  start(options?: { timeout?: Duration }): Promise<void>;
  /** Opens a web terminal on the first agent (frames of at most 4096 bytes). */
  terminal(options?: { width?: number; height?: number; timeout?: Duration }): Promise<TerminalSession>;
}

/**
 * A Coder deployment. Each VU has its own API client; everything created by
 * any VU of this process is recorded for {@link cleanup}.
 */
export class Coder {
  constructor(options?: CoderOptions);
  /**
   * Creates a workspace and waits until it is ready, emitting
   * `workspace_build_duration`, `workspace_agent_connect_duration`,
   * `workspace_ready_duration` and `workspace_failed`.
   */
  createWorkspace(options: CreateWorkspaceOptions): Promise<Workspace>;
  /**
   * Lists workspaces that already exist on the deployment (all of them
   * without options), in the order coderd lists them, for traffic on
   * workspaces made beforehand (as `coder exp scaletest workspace-traffic`
   * does). Each is usable like a created one (`ssh.connect({ host:
   * ws.address })`, `terminal()`), with `existing: true`: this run never
   * deletes it. A stopped workspace is listed with `status` and an empty
   * `address`.
   *
   * ```js
   * const list = await coder.workspaces({ prefix: 'scaletest-', query: 'status:running' });
   * ```
   */
  workspaces(options?: FindWorkspacesOptions): Promise<Workspace[]>;
  /**
   * Deletes every workspace and scaletest user created through this
   * deployment by any VU of the process (typically in teardown). Idempotent.
   */
  cleanup(): Promise<void>;
}

declare const cde: {
  Tailnet: typeof Tailnet;
  Coder: typeof Coder;
  Kubernetes: typeof Kubernetes;
  ssh: typeof ssh;
  lab: typeof lab;
};
export default cde;

/**
 * The API of cdeload's built-in `k6/http` module, which follows k6's:
 *
 * ```js
 * import http from 'k6/http';
 * const res = http.get('https://coder.example.com/api/v2/buildinfo', { tags: { name: 'buildinfo' } });
 * ```
 *
 * (`index.d.ts` describes the `k6/x/cdeload` module; k6/http's types are
 * here as the `K6Http` namespace. Scripts keep importing `'k6/http'`.)
 *
 * Metrics, with k6's names: `http_reqs` (Counter), `http_req_failed` (Rate,
 * requests the response callback did not accept), `http_req_duration`,
 * `http_req_blocked`, `http_req_connecting`, `http_req_tls_handshaking`,
 * `http_req_sending`, `http_req_waiting`, `http_req_receiving` (Trends, ms),
 * and the bytes in `data_sent`/`data_received`. Tags: `method`, `url`,
 * `name`, `status`, `expected_response`, `proto`, `tls_version`,
 * `error_code`, `error`, `group`, `scenario` (as `systemTags` allows).
 * Every redirect hop is a request of its own.
 *
 * Options read from the script's `options`: `insecureSkipTLSVerify`,
 * `tlsAuth`, `tlsVersion`, `hosts`, `userAgent`, `batch`, `batchPerHost`,
 * `discardResponseBodies`, `maxRedirects`, `noConnectionReuse`,
 * `noVUConnectionReuse`, `systemTags`, `throw`.
 */
export declare namespace K6Http {
  /** A request body: a string, bytes, or an object sent as a form (multipart when a value is a {@link FileData}). */
  type RequestBody = string | ArrayBuffer | ArrayBufferView | Record<string, string | number | boolean | FileData> | null;

  /** What {@link url} returns: the URL, and the template as the `name` tag. */
  interface TaggedURL {
    url: string;
    name: string;
    toString(): string;
  }

  type URLArg = string | TaggedURL;

  /** A response callback made by {@link expectedStatuses}. */
  interface ExpectedStatuses {
    readonly __brand: 'expectedStatuses';
  }

  interface Params {
    headers?: Record<string, string>;
    /** Added to the request's samples; `name` replaces the `name` tag. */
    tags?: Record<string, string>;
    /** A duration string or milliseconds; 60s by default. A request that runs out fails with error_code 1050. */
    timeout?: string | number;
    /** Redirects to follow; the `maxRedirects` option (10) by default. At the limit the 3xx response is returned. */
    redirects?: number;
    /** `text` (default), `binary` (an ArrayBuffer) or `none` (body discarded, `null`). */
    responseType?: 'text' | 'binary' | 'none';
    /** Credentials come from the URL (`http://user:pass@host`); `digest` answers a Digest challenge (MD5). */
    auth?: 'basic' | 'digest';
    /** Compresses the body: `gzip`, `deflate` or both, comma-separated, in order. */
    compression?: string;
    /** The jar to use; the VU's jar by default; `null` sends and keeps no cookies. */
    jar?: CookieJar | null;
    /** Which responses count as expected; `null` emits no http_req_failed and no expected_response tag. */
    responseCallback?: ExpectedStatuses | null;
    /** Cookies for this request; `replace: true` hides the jar's cookie of the same name. */
    cookies?: Record<string, string | { value: string; replace?: boolean }>;
  }

  interface Timings {
    blocked: number;
    connecting: number;
    tls_handshaking: number;
    sending: number;
    waiting: number;
    receiving: number;
    /** sending + waiting + receiving, in ms. */
    duration: number;
  }

  interface ResponseCookie {
    name: string;
    value: string;
    domain: string;
    path: string;
    http_only: boolean;
    secure: boolean;
    max_age: number;
    /** Milliseconds since the epoch; 0 when not set. */
    expires: number;
  }

  interface Response {
    /** 0 when the request failed before a response. */
    status: number;
    status_text: string;
    /** The URL of the last hop. */
    url: string;
    /** `HTTP/1.1` or `HTTP/2.0`. */
    proto: string;
    remote_ip: string;
    remote_port: number;
    /** `tls1.2`, `tls1.3`…; empty without TLS. */
    tls_version: string;
    /** Empty on success. */
    error: string;
    /**
     * k6's error codes: 1000 generic, 1020 invalid URL, 1050 timeout, 1100/1101
     * DNS, 1200 dial, 1201 dial timeout, 1202 connection refused, 1210 reset,
     * 1220 broken pipe, 1300 TLS, 1310 unknown authority, 1311 host mismatch,
     * 1600 HTTP/2, and 1000 + status for 4xx/5xx responses; 0 otherwise.
     */
    error_code: number;
    headers: Record<string, string>;
    cookies: Record<string, ResponseCookie[]>;
    body: string | ArrayBuffer | null;
    timings: Timings;
    request: {
      method: string;
      url: string;
      headers: Record<string, string[]>;
      body: string;
      cookies: Record<string, { name: string; value: string; replace: boolean }[]>;
    };
    /** Parses the body as JSON (once); `selector` picks a value by path, such as `"items.0.id"`. */
    json(selector?: string): any;
    /** Parses the body as HTML (k6/html's Selection); with `selector`, the matching nodes. */
    html(selector?: string): any;
  }

  /** What {@link file} returns. */
  interface FileData {
    data: string | ArrayBuffer;
    filename: string;
    content_type: string;
  }

  interface CookieJar {
    /** The cookies the jar would send to url, by name. */
    cookiesForURL(url: string): Record<string, string[]>;
    set(url: string, name: string, value: string, options?: {
      domain?: string; path?: string; expires?: string; max_age?: number; secure?: boolean; http_only?: boolean;
    }): void;
    clear(url: string): void;
    delete(url: string, name: string): void;
  }

  type BatchRequest = URLArg | [string, URLArg, RequestBody?, Params?] | { method?: string; url: URLArg; body?: RequestBody; params?: Params };

  function request(method: string, url: URLArg, body?: RequestBody, params?: Params): Response;
  function get(url: URLArg, params?: Params): Response;
  function head(url: URLArg, params?: Params): Response;
  function post(url: URLArg, body?: RequestBody, params?: Params): Response;
  function put(url: URLArg, body?: RequestBody, params?: Params): Response;
  function patch(url: URLArg, body?: RequestBody, params?: Params): Response;
  function del(url: URLArg, body?: RequestBody, params?: Params): Response;
  function options(url: URLArg, body?: RequestBody, params?: Params): Response;
  /** Runs the requests in parallel (bounded by the `batch` and `batchPerHost` options); the result has the shape of the argument. */
  function batch(requests: BatchRequest[]): Response[];
  function batch(requests: Record<string, BatchRequest>): Record<string, Response>;
  /** Like {@link request}, without blocking the VU; the promise settles on the VU's event loop. */
  function asyncRequest(method: string, url: URLArg, body?: RequestBody, params?: Params): Promise<Response>;
  function file(data: string | ArrayBuffer, filename?: string, contentType?: string): FileData;
  /** Tagged template: ``http.url`https://host/items/${id}` `` gives the name tag `https://host/items/${}`. */
  function url(strings: TemplateStringsArray, ...values: unknown[]): TaggedURL;
  function expectedStatuses(...statuses: Array<number | { min: number; max: number }>): ExpectedStatuses;
  /** Sets the VU's default response callback (200–399 by default); `null` turns it off. */
  function setResponseCallback(callback: ExpectedStatuses | null): void;
  /** The VU's jar; it starts empty at every iteration. */
  function cookieJar(): CookieJar;
  const CookieJar: { new (): CookieJar };
  const TLS_1_0: 'tls1.0';
  const TLS_1_1: 'tls1.1';
  const TLS_1_2: 'tls1.2';
  const TLS_1_3: 'tls1.3';
}
