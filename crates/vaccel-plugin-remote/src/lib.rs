//! # vaccel-plugin-remote
//!
//! A plugin like any other (type REMOTE) that forwards every session,
//! resource and op to a `vaccel agent` on the host. An application moves
//! from local to remote by changing only `VACCEL_PLUGINS`.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `VACCEL_RPC_ADDRESS` | agent address: `unix:///path`, `tcp://host:port`, `vsock://cid:port` | `tcp://127.0.0.1:65500` |
//! | `VACCEL_RPC_TOKEN` | shared token for TCP agents | – |
//! | `VACCEL_RPC_TIMEOUT` | seconds to wait for one reply | 120 |
//! | `VACCEL_RPC_BUSY_POLL_US` | how long (µs) a caller polls for its reply around the time it is expected, before it blocks; 0: always block | 50 |
//!
//! One connection is shared by every session and thread of the process
//! (requests are multiplexed). If the agent goes away, calls in flight fail
//! with `ESESS`; the next call reconnects and transparently re-creates the
//! session and its resources on the new agent. A call with no reply within
//! `VACCEL_RPC_TIMEOUT` fails with `ETIMEDOUT`; if the agent then does not
//! answer a PING either within a second, the connection is closed (the next
//! call reconnects). Each connection has one watchdog thread for this.

mod client;
mod wait;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::Connection;
use vaccel_core::ops::resource_arg_index;
use vaccel_core::{
    Arg, ArgOut, Code, Error, OpCtx, OpSet, OpType, Plugin, PluginInfo, PluginType, Resource,
    Result, SessionId,
};
use vaccel_proto::{ARG_FLAG_SHM, ArgWire, FileWire, OutWire, Request, Response};
use vaccel_transport::Address;

/// Arguments smaller than this are copied even when they live in shared
/// memory: a reference costs about as much.
const SHM_MIN_BYTES: usize = 4096;

/// Default agent address (as upstream vAccel).
pub const DEFAULT_ADDRESS: &str = "tcp://127.0.0.1:65500";

/// Default time to wait for one reply (`VACCEL_RPC_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Default busy-poll window (see [`Settings::busy_poll`]).
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(50);

/// Remote plugin settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Agent address.
    pub address: Address,
    /// Token for TCP agents.
    pub token: Option<String>,
    /// Time to wait for one reply.
    pub timeout: Duration,
    /// Busy polling: how long a caller polls the socket for its reply
    /// around the time it is expected before it blocks (zero: always
    /// block). See `VACCEL_RPC_BUSY_POLL_US`.
    pub busy_poll: Duration,
}

impl Settings {
    /// From `VACCEL_RPC_ADDRESS`, `VACCEL_RPC_TOKEN`, `VACCEL_RPC_TIMEOUT`
    /// and `VACCEL_RPC_BUSY_POLL_US`.
    pub fn from_env() -> Result<Settings> {
        let addr =
            std::env::var("VACCEL_RPC_ADDRESS").unwrap_or_else(|_| DEFAULT_ADDRESS.to_string());
        let address = addr
            .parse::<Address>()
            .map_err(|e| Error::inval(format!("VACCEL_RPC_ADDRESS: {e}")))?;
        let timeout = match std::env::var("VACCEL_RPC_TIMEOUT") {
            Ok(v) => Duration::from_secs_f64(
                v.parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0 && s.is_finite())
                    .ok_or_else(|| {
                        Error::inval(format!(
                            "VACCEL_RPC_TIMEOUT={v}: expected a positive number of seconds"
                        ))
                    })?,
            ),
            Err(_) => DEFAULT_TIMEOUT,
        };
        let busy_poll = busy_poll_from_env()?;
        Ok(Settings {
            address,
            token: std::env::var("VACCEL_RPC_TOKEN").ok(),
            timeout,
            busy_poll,
        })
    }

    /// Settings for `address` with the defaults: no token, 120 s timeout,
    /// the default busy-poll window.
    pub fn new(address: Address) -> Settings {
        Settings {
            address,
            token: None,
            timeout: DEFAULT_TIMEOUT,
            busy_poll: DEFAULT_BUSY_POLL,
        }
    }
}

/// `VACCEL_RPC_BUSY_POLL_US`, or the default when it is unset.
pub fn busy_poll_from_env() -> Result<Duration> {
    match std::env::var("VACCEL_RPC_BUSY_POLL_US") {
        Ok(v) => parse_busy_poll(&v),
        Err(_) => Ok(DEFAULT_BUSY_POLL),
    }
}

/// Parse a `VACCEL_RPC_BUSY_POLL_US` value: microseconds, 0 … 1 000 000.
pub fn parse_busy_poll(v: &str) -> Result<Duration> {
    match v.trim().parse::<u64>() {
        Ok(us) if us <= 1_000_000 => Ok(Duration::from_micros(us)),
        _ => Err(Error::inval(format!(
            "VACCEL_RPC_BUSY_POLL_US={v}: expected microseconds from 0 to 1000000 (0: callers block for every reply)"
        ))),
    }
}

struct RemoteSession {
    hint: u32,
    /// (connection generation, agent-side id); stale generations are re-created.
    remote: Option<(u64, u64)>,
    resources: Vec<Resource>,
}

struct RemoteResource {
    generation: u64,
    id: u64,
    users: usize,
}

/// The remote plugin.
pub struct RemotePlugin {
    settings: Settings,
    conn: Mutex<Option<Arc<Connection>>>,
    generation: AtomicU64,
    sessions: Mutex<HashMap<SessionId, RemoteSession>>,
    resources: Mutex<HashMap<u64, RemoteResource>>,
}

impl std::fmt::Debug for RemotePlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotePlugin")
            .field("settings", &self.settings)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn expect_done(r: Response<'_>, what: &str) -> Result<()> {
    match r {
        Response::Done => Ok(()),
        other => Err(Error::backend(format!(
            "agent answered {what} with {other:?}"
        ))),
    }
}

impl RemotePlugin {
    /// Configured from the environment.
    pub fn from_env() -> Result<RemotePlugin> {
        Ok(RemotePlugin::new(Settings::from_env()?))
    }

    /// With explicit settings. Connects lazily, on first use.
    pub fn new(settings: Settings) -> RemotePlugin {
        RemotePlugin {
            settings,
            conn: Mutex::new(None),
            generation: AtomicU64::new(0),
            sessions: Mutex::new(HashMap::new()),
            resources: Mutex::new(HashMap::new()),
        }
    }

    /// The live connection, reconnecting if there is none or it failed.
    fn connection(&self) -> Result<Arc<Connection>> {
        let mut slot = lock(&self.conn);
        if let Some(c) = slot.as_ref().filter(|c| !c.is_dead()) {
            return Ok(c.clone());
        }
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let token = self.settings.token.as_deref().unwrap_or("").as_bytes();
        let c = Connection::open(
            &self.settings.address,
            token,
            self.settings.timeout,
            self.settings.busy_poll,
            generation,
        )?;
        *slot = Some(c.clone());
        Ok(c)
    }

    fn call(&self, conn: &Connection, req: &Request<'_>) -> Result<client::Reply> {
        conn.call(req, self.settings.timeout)
    }

    /// The agent-side id of a local resource on connection `conn`, creating it there if needed.
    fn remote_resource(&self, conn: &Connection, res: &Resource) -> Result<u64> {
        if let Some(r) = lock(&self.resources)
            .get(&res.id())
            .filter(|r| r.generation == conn.generation)
        {
            return Ok(r.id);
        }
        let datas = res
            .files()
            .iter()
            .map(|f| f.bytes())
            .collect::<Result<Vec<_>>>()?;
        let files: Vec<FileWire<'_>> = res
            .files()
            .iter()
            .zip(&datas)
            .map(|(f, d)| FileWire::Data {
                name: f.name(),
                data: d,
            })
            .collect();
        let reply = self.call(
            conn,
            &Request::ResourceCreate {
                kind: res.kind() as u32,
                files,
            },
        )?;
        let Response::Resource { resource } = reply.response()? else {
            return Err(Error::backend(
                "agent answered RESOURCE_CREATE without a resource id",
            ));
        };
        lock(&self.resources).insert(
            res.id(),
            RemoteResource {
                generation: conn.generation,
                id: resource,
                users: 0,
            },
        );
        Ok(resource)
    }

    /// The agent-side session id for `local`, (re)creating it on this connection if needed.
    fn remote_session(&self, conn: &Connection, local: SessionId) -> Result<u64> {
        let (hint, resources) = {
            let sessions = lock(&self.sessions);
            let s = sessions.get(&local).ok_or_else(|| {
                Error::noent(format!("session {local} is not known to the remote plugin"))
            })?;
            if let Some((generation, id)) = s.remote {
                if generation == conn.generation {
                    return Ok(id);
                }
            }
            (s.hint, s.resources.clone())
        };
        let reply = self.call(conn, &Request::SessionCreate { hint })?;
        let Response::Session { session, plugin } = reply.response()? else {
            return Err(Error::backend(
                "agent answered SESSION_CREATE without a session",
            ));
        };
        tracing::debug!(local, remote = session, plugin, "remote session created");
        for r in &resources {
            let rid = self.remote_resource(conn, r)?;
            expect_done(
                self.call(
                    conn,
                    &Request::ResourceRegister {
                        resource: rid,
                        session,
                    },
                )?
                .response()?,
                "register",
            )?;
        }
        if let Some(s) = lock(&self.sessions).get_mut(&local) {
            s.remote = Some((conn.generation, session));
        }
        Ok(session)
    }
}

impl Plugin for RemotePlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "remote".into(),
            version: vaccel_core::VERSION.into(),
            types: PluginType::REMOTE,
            ops: OpSet::all(),
            details: vec![("address".into(), self.settings.address.to_string())],
        }
    }

    fn session_init(&self, session: SessionId, hint: PluginType) -> Result<()> {
        // The agent picks among its local plugins: REMOTE means nothing there.
        let hint = (hint - PluginType::REMOTE).bits();
        lock(&self.sessions).insert(
            session,
            RemoteSession {
                hint,
                remote: None,
                resources: Vec::new(),
            },
        );
        let conn = self.connection()?;
        self.remote_session(&conn, session)
            .map(|_| ())
            .inspect_err(|_| {
                lock(&self.sessions).remove(&session);
            })
    }

    fn session_release(&self, session: SessionId) -> Result<()> {
        let Some(s) = lock(&self.sessions).remove(&session) else {
            return Ok(());
        };
        for r in &s.resources {
            let mut map = lock(&self.resources);
            if let Some(rr) = map.get_mut(&r.id()) {
                rr.users = rr.users.saturating_sub(1);
            }
        }
        let conn = lock(&self.conn).clone();
        match (s.remote, conn) {
            (Some((generation, id)), Some(c)) if c.generation == generation && !c.is_dead() => {
                expect_done(
                    self.call(&c, &Request::SessionRelease { session: id })?
                        .response()?,
                    "release",
                )?;
                self.release_unused(&c);
                Ok(())
            }
            // The agent already dropped it with the old connection.
            _ => Ok(()),
        }
    }

    fn resource_register(&self, session: SessionId, res: &Resource) -> Result<()> {
        let conn = self.connection()?;
        let sid = self.remote_session(&conn, session)?;
        let rid = self.remote_resource(&conn, res)?;
        expect_done(
            self.call(
                &conn,
                &Request::ResourceRegister {
                    resource: rid,
                    session: sid,
                },
            )?
            .response()?,
            "register",
        )?;
        if let Some(r) = lock(&self.resources).get_mut(&res.id()) {
            r.users += 1;
        }
        if let Some(s) = lock(&self.sessions).get_mut(&session) {
            s.resources.push(res.clone());
        }
        Ok(())
    }

    fn resource_unregister(&self, session: SessionId, res: &Resource) -> Result<()> {
        if let Some(s) = lock(&self.sessions).get_mut(&session) {
            s.resources.retain(|r| !r.ptr_eq(res));
        }
        let conn = self.connection()?;
        let remote = lock(&self.resources)
            .get(&res.id())
            .filter(|r| r.generation == conn.generation)
            .map(|r| r.id);
        let sid = lock(&self.sessions)
            .get(&session)
            .and_then(|s| s.remote)
            .filter(|(g, _)| *g == conn.generation);
        if let (Some(rid), Some((_, sid))) = (remote, sid) {
            expect_done(
                self.call(
                    &conn,
                    &Request::ResourceUnregister {
                        resource: rid,
                        session: sid,
                    },
                )?
                .response()?,
                "unregister",
            )?;
        }
        if let Some(r) = lock(&self.resources).get_mut(&res.id()) {
            r.users = r.users.saturating_sub(1);
        }
        self.release_unused(&conn);
        Ok(())
    }

    fn run(
        &self,
        ctx: &OpCtx<'_>,
        op: OpType,
        read: &[Arg<'_>],
        write: &mut [ArgOut<'_>],
    ) -> Result<()> {
        let conn = self.connection()?;
        let sid = self.remote_session(&conn, ctx.session)?;
        // Translate a resource id argument into the agent's id.
        let mut remote_id = [0u8; 8];
        let res_arg = resource_arg_index(op).filter(|i| read.get(*i).is_some_and(|a| a.len() == 8));
        if let Some(i) = res_arg {
            let local = u64::from_ne_bytes(read[i].bytes().try_into().expect("8 bytes"));
            let rid = if local == 0 {
                0
            } else {
                let res = ctx.resource(local)?;
                self.remote_resource(&conn, &res)?
            };
            remote_id = rid.to_ne_bytes();
        }
        // Arguments in shared memory travel as references (Unix sockets).
        let read_shm: Vec<Option<[u8; 24]>> = read
            .iter()
            .map(|a| self.shm_ref(&conn, a.bytes()))
            .collect::<Result<_>>()?;
        let write_shm: Vec<Option<[u8; 24]>> = write
            .iter()
            .map(|o| {
                if o.is_growable() {
                    Ok(None)
                } else {
                    self.shm_ref(&conn, o.buffer())
                }
            })
            .collect::<Result<_>>()?;
        let reads: Vec<ArgWire<'_>> = read
            .iter()
            .enumerate()
            .map(|(i, a)| match &read_shm[i] {
                Some(r) => ArgWire {
                    ty: a.type_id(),
                    flags: ARG_FLAG_SHM,
                    data: &r[..],
                },
                None => ArgWire {
                    ty: a.type_id(),
                    flags: 0,
                    data: if Some(i) == res_arg {
                        &remote_id[..]
                    } else {
                        a.bytes()
                    },
                },
            })
            .collect();
        let writes: Vec<OutWire<'_>> = write
            .iter()
            .zip(&write_shm)
            .map(|(o, shm)| {
                let inout = if o.is_inout() {
                    vaccel_core::arg::ARG_FLAG_INOUT
                } else {
                    0
                };
                match shm {
                    Some(r) => OutWire {
                        ty: o.type_id(),
                        flags: inout | ARG_FLAG_SHM,
                        capacity: o.capacity() as u64,
                        growable: false,
                        data: &r[..],
                    },
                    None => OutWire {
                        ty: o.type_id(),
                        flags: inout,
                        capacity: if o.is_growable() {
                            0
                        } else {
                            o.capacity() as u64
                        },
                        growable: o.is_growable(),
                        data: if o.is_inout() { o.buffer() } else { &[] },
                    },
                }
            })
            .collect();
        let req = Request::Op {
            session: sid,
            op: op.id(),
            read: reads,
            write: writes,
        };
        let reply = self.call(&conn, &req)?;
        let Response::OpResult { outputs } = reply.response()? else {
            return Err(Error::backend(format!(
                "agent answered {op} without results"
            )));
        };
        if outputs.len() != write.len() {
            return Err(Error::backend(format!(
                "agent returned {} outputs for {} write arguments",
                outputs.len(),
                write.len()
            )));
        }
        for ((o, data), shm) in write.iter_mut().zip(outputs).zip(&write_shm) {
            if shm.is_some() {
                // Written in place; the reply is the length.
                let len: [u8; 8] = data.try_into().map_err(|_| {
                    Error::backend("agent returned a malformed shared-memory output length")
                })?;
                o.set_len(u64::from_le_bytes(len) as usize)?;
            } else {
                o.write(data)?;
            }
        }
        Ok(())
    }
}

impl RemotePlugin {
    /// A shared-memory reference for `bytes` if they live in a
    /// [`vaccel_core::shm::SharedVec`] and this connection negotiated shared
    /// memory; maps the region on the agent first if needed.
    fn shm_ref(&self, conn: &Connection, bytes: &[u8]) -> Result<Option<[u8; 24]>> {
        if !conn.shm() || bytes.len() < SHM_MIN_BYTES {
            return Ok(None);
        }
        let Some(r) = vaccel_core::shm::lookup(bytes) else {
            return Ok(None);
        };
        let mapped = lock(&conn.mapped).contains(&r.region);
        if !mapped {
            self.unmap_dead_regions(conn);
            let req = Request::ShmMap {
                region: r.region,
                size: r.region_len,
            };
            let reply = conn.call_with_fd(&req, Some(r.fd), self.settings.timeout)?;
            expect_done(reply.response()?, "SHM_MAP")?;
            lock(&conn.mapped).insert(r.region);
        }
        Ok(Some(vaccel_proto::encode_shm_ref(
            r.region, r.offset, r.len,
        )))
    }

    /// Tell the agent to drop mappings of regions this process freed.
    fn unmap_dead_regions(&self, conn: &Connection) {
        let live = vaccel_core::shm::live_regions();
        let dead: Vec<u64> = lock(&conn.mapped)
            .iter()
            .copied()
            .filter(|r| !live.contains(r))
            .collect();
        for region in dead {
            lock(&conn.mapped).remove(&region);
            if let Err(e) = self
                .call(conn, &Request::ShmUnmap { region })
                .and_then(|r| r.response().map(|_| ()))
            {
                tracing::debug!(region, error = %e, "unmapping a freed shared region");
            }
        }
    }

    /// Release agent-side resources no local session uses any more.
    fn release_unused(&self, conn: &Connection) {
        let unused: Vec<(u64, u64)> = lock(&self.resources)
            .iter()
            .filter(|(_, r)| r.users == 0)
            .map(|(local, r)| (*local, r.id))
            .collect();
        for (local, rid) in unused {
            let stale = lock(&self.resources)
                .get(&local)
                .is_some_and(|r| r.generation != conn.generation);
            if !stale {
                if let Err(e) = self
                    .call(conn, &Request::ResourceRelease { resource: rid })
                    .and_then(|r| r.response().map(|_| ()))
                {
                    if e.code() != Code::Busy {
                        tracing::debug!(resource = rid, error = %e, "releasing agent resource");
                    }
                    if e.code() == Code::Busy {
                        continue;
                    }
                }
            }
            lock(&self.resources).remove(&local);
        }
    }
}

vaccel_core::export_plugin!(
    vaccel_plugin_remote_entry_v1,
    RemotePlugin::from_env().unwrap_or_else(|e| {
        tracing::error!(error = %e, "remote plugin: invalid configuration; using {DEFAULT_ADDRESS}");
        RemotePlugin::new(Settings::new(DEFAULT_ADDRESS.parse().expect("valid default")))
    })
);
