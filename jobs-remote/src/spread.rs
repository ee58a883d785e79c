//! Items spread over hosts (GNU parallel's `-S`): each item of a batch runs
//! once, on one host of the batch's list, at most `slots` items at a time
//! per host.
//!
//! The items of one batch share a *group* (named by the batch, e.g. its
//! parent's instance id). The executor keeps a registry of groups; each
//! holds, per host, how many of its items run there now, the host's warm
//! connections and, once it could not be reached, the error that retired
//! it. An item takes the least busy live host that has a free slot, waiting
//! (asynchronously: a waiting item holds no thread) while all are busy.
//!
//! A host that cannot be used before the command starts (resolve, connect,
//! handshake, host key, login, or no channel opening) is retired for the
//! group: the item announces it with an information record naming the host
//! and the error, counts another attempt and goes to another host, its
//! location following it. Nothing ran, so moving it is safe. Once the
//! command started, its outcome is the item's: a nonzero exit, or a
//! connection lost mid-command (the command may have run in part), fails
//! the item and moves nothing (`--retries` runs it again, then on the hosts
//! still live). When every host is retired the item fails with a reason
//! naming each host's error.
//!
//! Warm connections are kept per slot, not per host: ssh2 sessions are
//! blocking and drive one channel well at a time, so `slots` commands at
//! once on a host want `slots` connections, each reused by the next item
//! that takes the slot (without the pool's per-host bound, which would
//! close and reopen the ones past it). A connection whose host resolves
//! differently now (the ssh config changed) is closed rather than reused.
//! When no item of a group runs, its connections go to the executor's pool
//! and time out there as any other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use jobs_core::{JobContext, JobFailure, JobSpec};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::config;
use crate::connect::{self, Connected};
use crate::error::{ErrorKind, HostErr, RemoteError, UNREACHABLE_EXIT_CODE};
use crate::exec;
use crate::options::SshOptions;
use crate::pool::{Pool, PoolKey};
use crate::spec::{Caller, Target, TYPE_NAME};

/// How many items run at once per host when the spec does not say.
pub const DEFAULT_SLOTS: usize = 1;

/// How long a group with no running item keeps what it learned (its
/// retired hosts) for items still to come.
const GROUP_IDLE: Duration = Duration::from_secs(120);

/// One item of a batch spread over hosts: its command runs once, on one of
/// `hosts`, sharing the hosts' slots with the other items of its `group`.
/// It travels as [`JobSpec::params`]; [`SpreadSpec::into_job_spec`] builds
/// the whole spec (type `RemoteJob`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpreadSpec {
    /// The hosts the item may run on, as the user wrote them.
    pub hosts: Vec<String>,
    /// How many items of the group run at once on one host.
    pub slots: usize,
    /// The items sharing these hosts' slots (and what was learned of
    /// unreachable hosts): one per batch.
    pub group: String,
    /// The shell line, run by the remote user's login shell.
    pub command: String,
    /// Whose SSH identity the item uses.
    #[serde(default, skip_serializing_if = "Caller::is_empty")]
    pub caller: Caller,
}

impl SpreadSpec {
    /// An item running `command` on one of `hosts`, one at a time per
    /// host, in the batch `group`.
    pub fn new<H: Into<String>>(
        hosts: impl IntoIterator<Item = H>,
        command: impl Into<String>,
        group: impl Into<String>,
    ) -> Self {
        SpreadSpec {
            hosts: hosts.into_iter().map(Into::into).collect(),
            slots: DEFAULT_SLOTS,
            group: group.into(),
            command: command.into(),
            caller: Caller::default(),
        }
    }

    /// Sets how many items run at once per host.
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = slots;
        self
    }

    /// Sets whose SSH identity the item uses.
    pub fn caller(mut self, caller: Caller) -> Self {
        self.caller = caller;
        self
    }

    /// Checks the spec before a job starts: at least one host, at least
    /// one slot, and every host string readable (an error names the first
    /// bad one).
    pub fn check(&self) -> Result<(), RemoteError> {
        if self.hosts.is_empty() {
            return Err(RemoteError::new(
                "",
                ErrorKind::InvalidInput,
                "no hosts given",
            ));
        }
        if self.slots == 0 {
            return Err(RemoteError::new(
                self.hosts.join(","),
                ErrorKind::InvalidInput,
                "slots must be at least 1",
            ));
        }
        self.hosts
            .iter()
            .try_for_each(|h| Target::parse(h).map(drop))
    }

    /// The job spec of the item: type `RemoteJob`, the command as written,
    /// these params, and the hosts joined with commas as location until
    /// the item has its host.
    pub fn into_job_spec(self) -> JobSpec {
        let location = self.hosts.join(",");
        let command = self.command.clone();
        let params = serde_json::to_value(&self).unwrap_or(serde_json::Value::Null);
        JobSpec::new(TYPE_NAME, command)
            .params(params)
            .location(location)
    }
}

/// The executor's groups, by batch (and hosts and slots, so a misnamed
/// group cannot mix two lists).
#[derive(Debug, Default)]
pub(crate) struct Groups {
    groups: Mutex<HashMap<GroupKey, Arc<Group>>>,
}

type GroupKey = (String, Vec<String>, usize);

impl Groups {
    fn lock(&self) -> MutexGuard<'_, HashMap<GroupKey, Arc<Group>>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The item's group, made on its first item; forgets groups idle for
    /// long on the way.
    fn join(&self, spec: &SpreadSpec, pool: Weak<Pool>) -> Member {
        let mut groups = self.lock();
        groups.retain(|_, g| !g.lock().forgettable());
        let key = (spec.group.clone(), spec.hosts.clone(), spec.slots);
        let group = Arc::clone(groups.entry(key).or_insert_with(|| {
            Arc::new(Group {
                hosts: spec.hosts.clone(),
                slots: spec.slots.max(1),
                state: Mutex::new(GroupState {
                    hosts: spec.hosts.iter().map(|_| HostState::default()).collect(),
                    members: 0,
                    idle_since: None,
                }),
                freed: Notify::new(),
                pool,
            })
        }));
        drop(groups);
        {
            let mut st = group.lock();
            st.members += 1;
            st.idle_since = None;
        }
        Member { group }
    }
}

/// The hosts of one batch and how they are used.
struct Group {
    hosts: Vec<String>,
    slots: usize,
    state: Mutex<GroupState>,
    /// Woken when a slot is freed or a host retired.
    freed: Notify,
    /// Where warm connections go when no item runs.
    pool: Weak<Pool>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("hosts", &self.hosts)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

struct GroupState {
    hosts: Vec<HostState>,
    /// Items of the group running now (waiting for a slot or holding one).
    members: usize,
    /// Since when no item ran.
    idle_since: Option<Instant>,
}

impl GroupState {
    fn forgettable(&self) -> bool {
        self.members == 0 && self.idle_since.is_some_and(|t| t.elapsed() > GROUP_IDLE)
    }
}

#[derive(Default)]
struct HostState {
    /// Slots taken.
    busy: usize,
    /// Why the host was retired.
    retired: Option<RemoteError>,
    /// Connections of finished items, for the next ones.
    warm: Vec<(PoolKey, Connected)>,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        // Every mutation completes before anything that could panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many items the group's live hosts can run at once, and whether
    /// any host was retired.
    fn live_slots(&self) -> (usize, bool) {
        let st = self.lock();
        let live = st.hosts.iter().filter(|h| h.retired.is_none()).count();
        (live * self.slots, live < st.hosts.len())
    }

    /// Takes a slot of the least busy live host with one free, waiting
    /// while every live host is full; fails once every host is retired,
    /// with a reason naming each host's error.
    async fn acquire(self: &Arc<Group>) -> Result<Lease, JobFailure> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a slot freed in between wakes it.
            freed.as_mut().enable();
            {
                let mut st = self.lock();
                if st.hosts.iter().all(|h| h.retired.is_some()) {
                    let why: Vec<String> = st
                        .hosts
                        .iter()
                        .filter_map(|h| h.retired.as_ref().map(ToString::to_string))
                        .collect();
                    let mut failure =
                        JobFailure::new(format!("no host can take the item: {}", why.join("; ")));
                    // As a host's child: 255 when none could be reached at all.
                    if st.hosts.iter().all(|h| {
                        h.retired
                            .as_ref()
                            .is_some_and(|e| e.kind().is_unreachable())
                    }) {
                        failure.exit_code = Some(UNREACHABLE_EXIT_CODE);
                    }
                    return Err(failure);
                }
                let free = st
                    .hosts
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| h.retired.is_none() && h.busy < self.slots)
                    .min_by_key(|(i, h)| (h.busy, *i))
                    .map(|(i, _)| i);
                if let Some(i) = free {
                    let h = &mut st.hosts[i];
                    h.busy += 1;
                    let warm = h.warm.pop();
                    return Ok(Lease {
                        group: Arc::clone(self),
                        host: i,
                        warm,
                        keep: None,
                        retire: None,
                    });
                }
            }
            freed.await;
        }
    }
}

/// One item's membership of its group; leaving hands the group's warm
/// connections to the pool when no other item runs.
struct Member {
    group: Arc<Group>,
}

impl Drop for Member {
    fn drop(&mut self) {
        let warm: Vec<(PoolKey, Connected)> = {
            let mut st = self.group.lock();
            st.members = st.members.saturating_sub(1);
            if st.members > 0 {
                return;
            }
            st.idle_since = Some(Instant::now());
            st.hosts.iter_mut().flat_map(|h| h.warm.drain(..)).collect()
        };
        if warm.is_empty() {
            return;
        }
        let pool = self.group.pool.clone();
        // The pool may close some (past its bounds): not on an async worker.
        let _ = std::thread::Builder::new()
            .name("ssh spread idle".into())
            .spawn(move || {
                for (key, conn) in warm {
                    match pool.upgrade() {
                        Some(p) => p.put(key, conn),
                        None => connect::close(conn, true),
                    }
                }
            });
    }
}

/// A slot of one host, held by an item from its start to its end. Dropped
/// (on the item's SSH thread), it frees the slot, keeps the connection the
/// item left for the next item, or retires the host.
struct Lease {
    group: Arc<Group>,
    host: usize,
    /// The slot's warm connection, until the item takes it.
    warm: Option<(PoolKey, Connected)>,
    /// The connection to keep for the slot.
    keep: Option<(PoolKey, Connected)>,
    /// Set when the host could not be used.
    retire: Option<RemoteError>,
}

impl Lease {
    fn host(&self) -> &str {
        &self.group.hosts[self.host]
    }

    /// A connection for `key`: the slot's own if it was made for the same
    /// resolution (else it is closed), then one from the pool.
    fn take_warm(&mut self, key: &PoolKey, pool: &Weak<Pool>) -> Option<Connected> {
        match self.warm.take() {
            Some((k, conn)) if &k == key => return Some(conn),
            Some((_, stale)) => connect::close(stale, true),
            None => {}
        }
        pool.upgrade().and_then(|p| p.take(key))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut closing: Vec<(PoolKey, Connected)> = self.warm.take().into_iter().collect();
        {
            let mut st = self.group.lock();
            let h = &mut st.hosts[self.host];
            h.busy = h.busy.saturating_sub(1);
            match self.retire.take() {
                Some(e) => {
                    h.retired.get_or_insert(e);
                    closing.append(&mut h.warm);
                    closing.extend(self.keep.take());
                }
                None if h.retired.is_some() => closing.extend(self.keep.take()),
                None => h.warm.extend(self.keep.take()),
            }
        }
        self.group.freed.notify_waiters();
        for (_, conn) in closing {
            connect::close(conn, false);
        }
    }
}

/// How one try on a host ended.
enum Tried {
    /// The command ran (or the item was stopped first): its result.
    Ran(Result<(), JobFailure>),
    /// The host could not be used; nothing ran. The host is retired.
    Unusable(RemoteError),
}

/// Runs one item: takes a slot, runs there, and moves to another host
/// while the one it got cannot be reached.
pub(crate) async fn run(
    groups: &Groups,
    options: Arc<SshOptions>,
    pool: Weak<Pool>,
    spec: SpreadSpec,
    ctx: JobContext,
) -> Result<(), JobFailure> {
    spec.check().map_err(|e| e.to_failure())?;
    let member = groups.join(&spec, pool.clone());
    let command: Arc<str> = spec.command.into();
    let ctx = Arc::new(ctx);
    // A batch restarted in place (`restart --failed`) gets its throttle
    // back whole, while its group still knows the hosts it retired.
    if let (live, true) = member.group.live_slots() {
        let _ = ctx.limit_siblings(live);
    }
    let mut first = true;
    loop {
        let lease = tokio::select! {
            lease = member.group.acquire() => lease?,
            () = ctx.stopped() => return Ok(()),
        };
        if !first {
            // Best effort: the count is what `show` tells, not the work.
            let _ = ctx.count_attempt();
        }
        first = false;
        let host = lease.host().to_string();
        let _ = ctx.set_location(host.clone());
        let stop = ctx.stop_token();
        let started = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let (options, pool, ctx, started) = (
                Arc::clone(&options),
                pool.clone(),
                Arc::clone(&ctx),
                Arc::clone(&started),
            );
            let command = Arc::clone(&command);
            std::thread::Builder::new()
                .name(format!("ssh {host}"))
                .spawn(move || {
                    let mut lease = lease;
                    let tried = try_host(&mut lease, &command, &options, &pool, &ctx, &started);
                    // The slot is free (or the host retired) before the item
                    // looks for another.
                    drop(lease);
                    let _ = tx.send(tried);
                })
                .map_err(|e| JobFailure::new(format!("cannot start a thread for the host: {e}")))?;
        }
        let lost = || {
            Tried::Ran(Err(JobFailure::new(
                "the host's SSH thread ended without a result (it panicked)",
            )))
        };
        tokio::pin!(rx);
        let tried = tokio::select! {
            r = &mut rx => r.unwrap_or_else(|_| lost()),
            () = stop.stopped() => {
                // Stopped while connecting: nothing runs remotely yet, and
                // the thread will not start the command.
                if !started.load(Ordering::SeqCst) {
                    return Ok(());
                }
                rx.await.unwrap_or_else(|_| lost())
            }
        };
        match tried {
            Tried::Ran(result) => return result,
            Tried::Unusable(e) => {
                ctx.information(format!(
                    "{e}; {host} takes no more items of this batch, the item goes to another host"
                ));
                // The host's slots are gone: the batch runs no more items
                // at once than the live hosts take (the others stay queued,
                // not Running while they wait here). Best effort.
                let _ = ctx.limit_siblings(member.group.live_slots().0);
                if ctx.stop_requested() {
                    return Ok(());
                }
            }
        }
    }
}

/// One try on the leased host, on its own thread: connect (or reuse the
/// slot's connection), run, and leave the connection for the slot. A
/// failure before the command starts retires the host.
fn try_host(
    lease: &mut Lease,
    command: &str,
    options: &SshOptions,
    pool: &Weak<Pool>,
    ctx: &JobContext,
    started: &AtomicBool,
) -> Tried {
    let resolved = match config::resolve(lease.host(), options) {
        Ok(r) => r,
        Err(e) => return retire(lease, e),
    };
    if ctx.stop_requested() {
        return Tried::Ran(Ok(()));
    }
    let key = PoolKey::of(&resolved);
    let he = HostErr {
        host: resolved.written.clone(),
    };
    let warm = lease.take_warm(&key, pool);
    let reused = warm.is_some();
    let conn = match warm {
        Some(conn) => {
            connect::prepare(&conn, &resolved);
            conn
        }
        None => match connect::connect(&resolved) {
            Ok(conn) => conn,
            Err(e) => return retire(lease, e),
        },
    };
    started.store(true, Ordering::SeqCst);
    if ctx.stop_requested() {
        lease.keep = Some((key, conn));
        return Tried::Ran(Ok(()));
    }
    let (conn, channel) = match exec::open_channel(&conn.session, &he) {
        Ok(channel) => (conn, channel),
        Err(e) => {
            connect::close(conn, false);
            if !reused {
                return retire(lease, e);
            }
            // A warm connection gone stale: a fresh one, as if none was kept.
            let conn = match connect::connect(&resolved) {
                Ok(conn) => conn,
                Err(e) => return retire(lease, e),
            };
            if ctx.stop_requested() {
                lease.keep = Some((key, conn));
                return Tried::Ran(Ok(()));
            }
            match exec::open_channel(&conn.session, &he) {
                Ok(channel) => (conn, channel),
                Err(e) => {
                    connect::close(conn, false);
                    return retire(lease, e);
                }
            }
        }
    };
    // From here the command may have started: its outcome is the item's.
    let channel = match exec::start(channel, command, false, &he) {
        Ok(channel) => channel,
        Err(e) => {
            connect::close(conn, false);
            return Tried::Ran(Err(e.to_failure()));
        }
    };
    let (result, reusable) = exec::run(conn, channel, None, &resolved, ctx, options.stop_grace);
    lease.keep = reusable.map(|conn| (key, conn));
    Tried::Ran(result)
}

/// Retires the leased host: it could not be used, and nothing ran.
fn retire(lease: &mut Lease, e: RemoteError) -> Tried {
    lease.retire = Some(e.clone());
    Tried::Unusable(e)
}

/// The spread item a job's params describe, if they describe one (a
/// parent's [`RemoteSpec`](crate::RemoteSpec) or a host's task does not:
/// it has no group and no slots).
pub(crate) fn spec_of(params: &serde_json::Value) -> Option<SpreadSpec> {
    let is_spread = params
        .as_object()
        .is_some_and(|o| o.contains_key("group") && o.contains_key("slots"));
    is_spread
        .then(|| serde_json::from_value(params.clone()).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(hosts: &[&str], slots: usize) -> (Groups, Member) {
        let groups = Groups::default();
        let spec = SpreadSpec::new(hosts.iter().copied(), "true", "g").slots(slots);
        let member = groups.join(&spec, Weak::new());
        (groups, member)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn slots_go_to_the_least_busy_live_host_and_wait_when_all_are_full() {
        rt().block_on(async {
            let (_groups, m) = group(&["a", "b"], 2);
            let mut held = Vec::new();
            for want in ["a", "b", "a", "b"] {
                let lease = m.group.acquire().await.expect("a slot");
                assert_eq!(lease.host(), want);
                held.push(lease);
            }
            // All four taken: the next waits until one is freed.
            let waiting = m.group.acquire();
            tokio::pin!(waiting);
            assert!(
                tokio::time::timeout(Duration::from_millis(50), waiting.as_mut())
                    .await
                    .is_err()
            );
            drop(held.remove(1));
            let lease = waiting.await.expect("the freed slot");
            assert_eq!(lease.host(), "b");
        });
    }

    #[test]
    fn a_retired_host_takes_no_more_items_and_all_retired_fails_naming_each() {
        rt().block_on(async {
            let (_groups, m) = group(&["a", "b"], 1);
            let mut a = m.group.acquire().await.expect("a");
            assert_eq!(a.host(), "a");
            a.retire = Some(RemoteError::new(
                "a",
                ErrorKind::ConnectionRefused,
                "connection refused",
            ));
            drop(a);
            for _ in 0..3 {
                let lease = m.group.acquire().await.expect("b");
                assert_eq!(lease.host(), "b");
            }
            let mut b = m.group.acquire().await.expect("b");
            b.retire = Some(RemoteError::new("b", ErrorKind::Auth, "no identity accepted"));
            drop(b);
            let e = m.group.acquire().await.err().expect("no host left");
            assert_eq!(
                e.reason,
                "no host can take the item: host a: connection refused; host b: no identity accepted"
            );
            // A login refused is no unreachable host: no 255.
            assert_eq!(e.exit_code, None);
        });
    }

    #[test]
    fn an_item_with_every_host_unreachable_exits_255() {
        rt().block_on(async {
            let (_groups, m) = group(&["a"], 1);
            let mut a = m.group.acquire().await.expect("a");
            a.retire = Some(RemoteError::new(
                "a",
                ErrorKind::ConnectTimeout,
                "connect timed out",
            ));
            drop(a);
            let e = m.group.acquire().await.err().expect("no host left");
            assert_eq!(e.exit_code, Some(UNREACHABLE_EXIT_CODE));
        });
    }

    #[test]
    fn items_of_one_batch_share_a_group_and_an_idle_group_is_kept_a_while() {
        let groups = Groups::default();
        let spec = SpreadSpec::new(["a", "b"], "x", "g1");
        let one = groups.join(&spec, Weak::new());
        let two = groups.join(&spec.clone(), Weak::new());
        assert!(Arc::ptr_eq(&one.group, &two.group));
        let other = groups.join(&SpreadSpec::new(["a", "b"], "x", "g2"), Weak::new());
        assert!(!Arc::ptr_eq(&one.group, &other.group));
        let kept = Arc::clone(&one.group);
        drop((one, two));
        assert!(Arc::ptr_eq(&kept, &groups.join(&spec, Weak::new()).group));
    }

    #[test]
    fn specs_are_checked_and_travel_as_params() {
        assert!(SpreadSpec::new(["a", "u@b:22"], "x", "g").check().is_ok());
        let none: [&str; 0] = [];
        assert!(SpreadSpec::new(none, "x", "g").check().is_err());
        assert!(SpreadSpec::new(["a"], "x", "g").slots(0).check().is_err());
        let e = SpreadSpec::new(["a", "b:0"], "x", "g")
            .check()
            .expect_err("bad port");
        assert_eq!(e.host(), "b:0");
        let spec = SpreadSpec::new(["a", "b"], "uptime", "g")
            .slots(3)
            .into_job_spec();
        assert_eq!(spec.type_name, TYPE_NAME);
        assert_eq!(spec.location.as_deref(), Some("a,b"));
        let back = spec_of(&spec.params).expect("a spread item's params");
        assert_eq!((back.slots, back.group.as_str()), (3, "g"));
        let parent = crate::RemoteSpec::new(["a"], "x").into_job_spec();
        assert!(spec_of(&parent.params).is_none());
    }
}
