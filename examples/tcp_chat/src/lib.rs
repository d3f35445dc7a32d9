//! A line-based TCP chat server where every client is an actor and every room is an actor.
//!
//! Each connection gets a [`ChatClient`] actor (made by the [`TcpServer`] meta process, under its
//! supervisor); rooms are [`Room`] actors, created on first `/join` by the [`Rooms`] directory.
//! A room monitors its members, so a client that vanishes (a crash, a dropped socket) leaves its
//! room without telling it.
//!
//! # Protocol
//!
//! One command or message per line (try it with `nc 127.0.0.1 PORT`):
//!
//! | line | effect |
//! | --- | --- |
//! | `/nick NAME` | changes your name (letters, digits, `-`, `_`; at most 24) |
//! | `/join ROOM` | leaves your room, if any, and joins `ROOM` (created when first joined) |
//! | `/quit` | says goodbye and closes the connection |
//! | anything else | is sent to everyone else in your room as `[ROOM] NAME: text` |
//!
//! The server's own notices start with `* `. A client that reads too slowly to keep up with its
//! room (its write buffer full) is disconnected rather than buffered without bound.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::Node;
//! use tcp_chat::{self, ChatConfig};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! let node = Node::builder("chat-doc@localhost").start().await?;
//! let server = tcp_chat::start(&node, ChatConfig::default()).await?;
//! let (r, mut w) = tokio::net::TcpStream::connect(server.local_addr()).await?.into_split();
//! let mut lines = BufReader::new(r).lines();
//! assert!(lines.next_line().await?.unwrap().starts_with("* welcome"));
//! w.write_all(b"/nick ada\n").await?;
//! assert_eq!(lines.next_line().await?.as_deref(), Some("* you are now ada"));
//! server.stop().await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use ergo::meta::tcp::{TcpConn, TcpEvent, TcpHandle, TcpHandler, TcpServer, TcpServerRef};
use ergo::meta::{Codec, StartError, TrySendError};
use ergo::prelude::*;

/// The longest accepted name.
pub const MAX_NICK: usize = 24;

/// How the chat server is run.
#[derive(Clone, Debug)]
pub struct ChatConfig {
    /// Where to listen (port 0: the OS picks one).
    pub addr: SocketAddr,
    /// The most clients at once; more are refused.
    pub max_clients: usize,
    /// The longest line accepted, in bytes; a longer one disconnects its sender.
    pub max_line: usize,
    /// Disconnects a client silent for this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Lines queued per client before it counts as too slow and is disconnected.
    pub write_buffer: usize,
}

impl Default for ChatConfig {
    /// 127.0.0.1 on a free port, 256 clients, 1 KiB lines, no idle timeout, 256 queued lines.
    fn default() -> Self {
        ChatConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_clients: 256,
            max_line: 1024,
            idle_timeout: None,
            write_buffer: 256,
        }
    }
}

/// A running chat server.
#[derive(Debug)]
pub struct ChatServer {
    server: TcpServerRef<ChatClient>,
    rooms: ActorRef<Rooms>,
}

impl ChatServer {
    /// Where the server listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The clients connected now.
    pub fn clients(&self) -> usize {
        self.server.connections()
    }

    /// The room directory.
    pub fn rooms(&self) -> &ActorRef<Rooms> {
        &self.rooms
    }

    /// Stops accepting, disconnects every client (lines already queued to it are flushed
    /// first), and stops the rooms.
    pub async fn stop(&self) {
        self.server.stop().await;
        let rooms = self.rooms.all().await.unwrap_or_default();
        self.rooms.stop(ExitReason::Shutdown);
        self.rooms.wait().await;
        // The rooms are linked to the directory and end with it; wait for them too.
        for room in rooms {
            room.wait().await;
        }
    }
}

/// Starts the room directory and the TCP server on `node`.
///
/// # Errors
///
/// [`StartError::Io`] when the address cannot be bound, [`StartError::Spawn`] when the node is
/// shutting down.
pub async fn start(node: &Node, config: ChatConfig) -> Result<ChatServer, StartError> {
    let rooms = node.spawn(Rooms::default()).await?;
    let directory = rooms.clone();
    let mut server = TcpServer::bind(config.addr)
        .codec(Codec::Lines)
        .max_connections(config.max_clients)
        .max_frame_size(config.max_line)
        .write_buffer(config.write_buffer);
    if let Some(idle) = config.idle_timeout {
        server = server.idle_timeout(idle);
    }
    let started = server
        .start(node, move |conn: TcpConn| {
            ChatClient::new(conn, directory.clone())
        })
        .await;
    match started {
        Ok(server) => Ok(ChatServer { server, rooms }),
        Err(e) => {
            rooms.stop(ExitReason::Shutdown);
            Err(e)
        }
    }
}

/// Whether `nick` is an acceptable name.
///
/// ```
/// use tcp_chat::valid_nick;
/// assert!(valid_nick("ada_l"));
/// assert!(!valid_nick("two words"));
/// assert!(!valid_nick(""));
/// ```
pub fn valid_nick(nick: &str) -> bool {
    !nick.is_empty()
        && nick.len() <= MAX_NICK
        && nick
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The directory of rooms: creates a room on first use, linked to itself.
#[derive(Default)]
pub struct Rooms {
    rooms: HashMap<String, ActorRef<Room>>,
}

#[actor]
impl Rooms {
    /// The room called `name`, created (and linked) if it does not exist yet.
    #[handle]
    async fn room(&mut self, name: String, ctx: &mut Ctx<Self>) -> Option<ActorRef<Room>> {
        if let Some(room) = self.rooms.get(&name).filter(|r| r.is_alive()) {
            return Some(room.clone());
        }
        let room = ctx.spawn_link(Room::new(name.clone())).await.ok()?;
        self.rooms.insert(name, room.clone());
        Some(room)
    }

    /// Every room.
    #[handle]
    fn all(&self) -> Vec<ActorRef<Room>> {
        self.rooms.values().cloned().collect()
    }

    /// The names of the rooms, sorted.
    #[handle]
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.rooms.keys().cloned().collect();
        names.sort();
        names
    }
}

struct Member {
    nick: String,
    client: ActorRef<ChatClient>,
}

/// One room: its members (monitored) and the broadcast of their lines.
pub struct Room {
    name: String,
    members: BTreeMap<Pid, Member>,
}

impl Room {
    fn new(name: String) -> Self {
        Room {
            name,
            members: BTreeMap::new(),
        }
    }

    async fn broadcast(&self, line: String, except: Option<Pid>) {
        for (pid, m) in &self.members {
            if Some(*pid) != except {
                let _ = m.client.deliver(line.clone()).await;
            }
        }
    }
}

#[actor]
impl Room {
    /// Adds `client` as `nick` and tells everyone (the newcomer too).
    #[handle]
    async fn join(&mut self, client: ActorRef<ChatClient>, nick: String, ctx: &mut Ctx<Self>) {
        ctx.monitor(client.pid());
        self.members.insert(
            client.pid(),
            Member {
                nick: nick.clone(),
                client,
            },
        );
        let line = format!(
            "* {nick} joined #{} ({} here)",
            self.name,
            self.members.len()
        );
        self.broadcast(line, None).await;
    }

    /// Removes `pid` and tells the others.
    #[handle]
    async fn leave(&mut self, pid: Pid) {
        if let Some(m) = self.members.remove(&pid) {
            self.broadcast(format!("* {} left #{}", m.nick, self.name), None)
                .await;
        }
    }

    /// Sends `text` from `pid` to everyone else in the room.
    #[handle]
    async fn say(&mut self, pid: Pid, text: String) {
        if let Some(m) = self.members.get(&pid) {
            let line = format!("[{}] {}: {text}", self.name, m.nick);
            self.broadcast(line, Some(pid)).await;
        }
    }

    /// Renames member `pid` and tells everyone.
    #[handle]
    async fn rename(&mut self, pid: Pid, nick: String) {
        if let Some(m) = self.members.get_mut(&pid) {
            let old = std::mem::replace(&mut m.nick, nick.clone());
            self.broadcast(format!("* {old} is now {nick}"), None).await;
        }
    }

    /// The nicks in the room, sorted.
    #[handle]
    fn who(&self) -> Vec<String> {
        let mut nicks: Vec<String> = self.members.values().map(|m| m.nick.clone()).collect();
        nicks.sort();
        nicks
    }

    #[on_down]
    async fn member_down(&mut self, down: Down) {
        self.leave(down.pid).await;
    }
}

/// One connected client: its name, its room and its connection.
pub struct ChatClient {
    conn: TcpHandle,
    nick: String,
    room: Option<(String, ActorRef<Room>)>,
    rooms: ActorRef<Rooms>,
}

impl ChatClient {
    fn new(conn: TcpConn, rooms: ActorRef<Rooms>) -> Self {
        ChatClient {
            nick: format!("guest{}", conn.peer.port()),
            conn: conn.handle,
            room: None,
            rooms,
        }
    }

    /// Writes a line to this client; a client too slow to take it is disconnected.
    fn write(&self, line: impl Into<String>) {
        match self.conn.try_send(line.into()) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(nick = %self.nick, "client too slow; disconnecting");
                self.conn.close();
            }
        }
    }

    async fn command(&mut self, line: &str, ctx: &mut Ctx<Self>) {
        let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.trim();
        match cmd {
            "/nick" if valid_nick(arg) => {
                self.nick = arg.to_owned();
                self.write(format!("* you are now {arg}"));
                if let Some((_, room)) = &self.room {
                    let _ = room.rename(ctx.pid(), arg.to_owned()).await;
                }
            }
            "/nick" => self.write(format!(
                "* a name is 1 to {MAX_NICK} letters, digits, `-` or `_`"
            )),
            "/join" if valid_nick(arg) => {
                if let Some((_, old)) = self.room.take() {
                    let _ = old.leave(ctx.pid()).await;
                }
                match self.rooms.room(arg.to_owned()).await {
                    Ok(Some(room)) => {
                        let _ = room.join(ctx.myself().clone(), self.nick.clone()).await;
                        self.room = Some((arg.to_owned(), room));
                    }
                    _ => self.write("* that room is not available"),
                }
            }
            "/join" => self.write("* usage: /join ROOM"),
            "/quit" => {
                self.write("* bye");
                self.conn.close();
            }
            _ => self.write(format!("* unknown command {cmd}")),
        }
    }
}

#[actor]
impl ChatClient {
    /// Reacts to the connection: greets, runs commands, sends lines to the room, and stops
    /// when the connection closes.
    #[handle]
    async fn tcp(&mut self, event: TcpEvent, ctx: &mut Ctx<Self>) {
        match event {
            TcpEvent::Connected(_) => self.write(format!(
                "* welcome to ergo chat, you are {}; commands: /nick NAME, /join ROOM, /quit",
                self.nick
            )),
            TcpEvent::Data(line) => {
                let line = String::from_utf8_lossy(&line);
                let line = line.trim();
                if line.is_empty() {
                    return;
                }
                if line.starts_with('/') {
                    self.command(line, ctx).await;
                } else if let Some((_, room)) = &self.room {
                    let _ = room.say(ctx.pid(), line.to_owned()).await;
                } else {
                    self.write("* join a room first: /join ROOM");
                }
            }
            TcpEvent::Closed(_) => {
                if let Some((_, room)) = self.room.take() {
                    let _ = room.leave(ctx.pid()).await;
                }
                ctx.stop();
            }
            _ => {}
        }
    }

    /// Writes a line from the room to this client.
    #[handle]
    fn deliver(&mut self, line: String) {
        self.write(line);
    }

    /// The client's name and room.
    #[handle]
    fn whoami(&self) -> (String, Option<String>) {
        (
            self.nick.clone(),
            self.room.as_ref().map(|(n, _)| n.clone()),
        )
    }
}

impl TcpHandler for ChatClient {
    fn event(event: TcpEvent) -> ChatClientMsg {
        ChatClientMsg::Tcp { event }
    }
}
