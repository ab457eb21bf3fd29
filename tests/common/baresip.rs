//! Real softphones for the black-box tests: baresip (Debian `baresip-core`), each with a
//! private configuration directory, no sound card and no terminal.
//!
//! - Audio source: the `aufile` module plays a WAV file (16-bit, 8 kHz, mono) as the
//!   microphone. Audio player: `aubridge` (a device that goes nowhere). Recording: the
//!   `sndfile` filter writes what the phone decoded from the network to
//!   `rec/dump-<time>-dec.wav` (and what it encoded to `…-enc.wav`).
//! - Codecs: only `g711` is loaded and the account offers PCMU then PCMA; no video module
//!   is loaded, so the SDP has one audio stream.
//! - Control: the caller dials with `-e /dial <uri>`; the callee answers by itself
//!   (`answermode=auto`); SIGTERM makes baresip hang up (BYE) and exit. `-t` bounds the
//!   life of every phone even if the test process dies; `-s` traces SIP to the log.
//! - Addresses: SIP listens on the test's own loopback host, but the SDP advertises
//!   127.0.0.1 (`net_interface`): baresip binds RTP to the wildcard address, so on
//!   loopback its packets leave from 127.0.0.1 whatever host it signals from, and the
//!   relay's hijack protection only latches on the SDP or signalling address.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{require_tool, run_bounded};

/// Where Debian installs baresip's modules.
pub const MODULE_PATH: &str = "/usr/lib/baresip/modules";

/// The sample rate of every WAV file here (G.711's).
pub const SAMPLE_RATE: u32 = 8_000;

/// A bound on a phone's whole life, should the test die without killing it.
const LIFETIME_SECS: u32 = 90;

/// The last lines of a log kept in failure messages.
const TAIL_LINES: usize = 60;

/// How a phone takes part in the call.
#[derive(Debug, Clone)]
pub enum Role {
    /// Answers every incoming call at once.
    Callee,
    /// Dials this URI as soon as it is ready.
    Caller { dial: String },
}

/// A running baresip process; killed when dropped.
#[derive(Debug)]
pub struct Softphone {
    pub name: String,
    /// Where it listens for SIP (UDP and TCP).
    pub sip: SocketAddr,
    child: Option<Child>,
    directory: tempfile::TempDir,
    log_path: PathBuf,
}

impl Softphone {
    /// Writes the configuration and starts baresip; `plays` is its microphone (a WAV file,
    /// 16-bit, 8 kHz, mono). Returns once the process is spawned, not once it is ready
    /// (see [`Softphone::wait_for`] and `baresip is ready.`).
    pub fn start(name: &str, sip: SocketAddr, plays: &Path, role: &Role) -> Softphone {
        let answer = match role {
            Role::Callee => ";answermode=auto",
            Role::Caller { .. } => "",
        };
        let account =
            format!("<sip:{name}@{sip}>;regint=0;audio_codecs=PCMU,PCMA;ptime=20{answer}\n");
        Softphone::spawn(name, sip, plays, role, &account)
    }

    /// [`Softphone::start`] with an account that registers at `registrar` (the SBC) as
    /// `sip:user@registrar` and answers digest challenges (REGISTER's 401, INVITE's 407)
    /// with `user` and `password`; it dials through the registrar (the AOR's domain).
    pub fn start_registered(
        name: &str,
        sip: SocketAddr,
        plays: &Path,
        role: &Role,
        registrar: SocketAddr,
        (user, password): (&str, &str),
    ) -> Softphone {
        let answer = match role {
            Role::Callee => ";answermode=auto",
            Role::Caller { .. } => "",
        };
        let account = format!(
            "<sip:{user}@{registrar}>;auth_user={user};auth_pass={password};\
             regint=300;audio_codecs=PCMU,PCMA;ptime=20{answer}\n"
        );
        Softphone::spawn(name, sip, plays, role, &account)
    }

    fn spawn(name: &str, sip: SocketAddr, plays: &Path, role: &Role, account: &str) -> Softphone {
        let binary = require_tool("baresip");
        require_modules(&["g711", "aufile", "aubridge", "sndfile", "account", "menu"]);
        let directory = tempfile::tempdir().expect("temporary directory");
        let recordings = directory.path().join("rec");
        fs::create_dir(&recordings).expect("create the recordings directory");
        fs::write(
            directory.path().join("config"),
            config(name, sip, plays, &recordings),
        )
        .expect("write the baresip config");
        fs::write(directory.path().join("accounts"), account).expect("write the baresip accounts");
        fs::write(directory.path().join("contacts"), "").expect("write the baresip contacts");

        let log_path = directory.path().join("baresip.log");
        let log = fs::File::create(&log_path).expect("create the baresip log");
        let mut command = Command::new(binary);
        command
            .arg("-f")
            .arg(directory.path())
            .args(["-s", "-t", &LIFETIME_SECS.to_string()]);
        if let Role::Caller { dial } = role {
            command.args(["-e", &format!("/dial {dial}")]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log)
            .spawn()
            .expect("spawn baresip");
        Softphone {
            name: name.to_owned(),
            sip,
            child: Some(child),
            directory,
            log_path,
        }
    }

    /// Everything it printed so far (SIP trace included), status-line updates removed.
    pub fn log(&self) -> String {
        let raw = fs::read(&self.log_path).unwrap_or_default();
        readable(&String::from_utf8_lossy(&raw))
    }

    /// The end of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
        format!("── {} (baresip) log ──\n{tail}", self.name)
    }

    /// Waits (bounded) until its log contains `needle`; the error says what was awaited
    /// and carries the log.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "{} exited ({status}) before logging {needle:?}\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not log {needle:?} within {timeout:?}\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// SIGTERM (baresip hangs up its calls with BYE, waits for their answers, and exits),
    /// then waits for the exit, bounded; SIGKILL and an error after `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let Some(mut child) = self.child.take() else {
            return Err(format!("{} was already stopped", self.name));
        };
        if let Some(pid) = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{} did not exit within {timeout:?} of SIGTERM\n{}",
                        self.name,
                        self.log_tail()
                    ));
                }
            }
        }
    }

    /// The WAV file of what it decoded from the network (written completely once the call
    /// has ended).
    pub fn received_audio(&self) -> Result<PathBuf, String> {
        let recordings = self.directory.path().join("rec");
        fs::read_dir(&recordings)
            .map_err(|error| format!("{}: {error}", recordings.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.to_string_lossy().ends_with("-dec.wav"))
            .ok_or_else(|| {
                format!(
                    "{} recorded nothing (no *-dec.wav in {})\n{}",
                    self.name,
                    recordings.display(),
                    self.log_tail()
                )
            })
    }

    /// The SIP messages it received, as traced (`-s`): the text after each
    /// `UDP <from> -> <own address>` line.
    pub fn received_sip(&self) -> Vec<String> {
        let arrow = format!(" -> {}", self.sip);
        self.log()
            .split("\x1b[36;1m#\n")
            .filter_map(|block| {
                let (first, message) = block.split_once('\n')?;
                let message = message.split("\x1b[;m").next().unwrap_or_default();
                first.ends_with(&arrow).then(|| message.to_owned())
            })
            .collect()
    }
}

impl Drop for Softphone {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn require_modules(names: &[&str]) {
    for name in names {
        let path = Path::new(MODULE_PATH).join(format!("{name}.so"));
        assert!(
            path.is_file(),
            "baresip module {} is missing. Run the README's test command (./tests/run.sh), \
             which installs the Debian packages the tests need.",
            path.display()
        );
    }
}

/// The `config` file of one phone.
fn config(name: &str, sip: SocketAddr, plays: &Path, recordings: &Path) -> String {
    format!(
        "# A black-box test softphone (tests/common/baresip.rs)\n\
         poll_method\t\tepoll\n\
         sip_listen\t\t{sip}\n\
         net_interface\t\t127.0.0.1\n\
         call_local_timeout\t20\n\
         call_max_calls\t\t1\n\
         audio_source\t\taufile,{plays}\n\
         audio_player\t\taubridge,{name}\n\
         audio_alert\t\taubridge,{name}\n\
         ausrc_srate\t\t{SAMPLE_RATE}\n\
         auplay_srate\t\t{SAMPLE_RATE}\n\
         ausrc_channels\t\t1\n\
         auplay_channels\t\t1\n\
         rtp_ports\t\t24000-29999\n\
         jitter_buffer_delay\t1-10\n\
         snd_path\t\t{recordings}\n\
         module_path\t\t{MODULE_PATH}\n\
         module\t\t\tg711.so\n\
         module\t\t\taufile.so\n\
         module\t\t\taubridge.so\n\
         module\t\t\tsndfile.so\n\
         module_app\t\taccount.so\n\
         module_app\t\tmenu.so\n",
        plays = plays.display(),
        recordings = recordings.display(),
    )
}

/// The log without the call-status line that baresip redraws with `\r` several times a
/// second (`[0:00:03] audio=64000/64000 (bit/s)`).
fn readable(raw: &str) -> String {
    raw.lines()
        .map(|line| {
            line.split('\r')
                .filter(|part| !part.trim_start().starts_with("[0:"))
                .collect::<String>()
        })
        .filter(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

// ── audio files (sox) ──────────────────────────────────────────────────────────────────

/// Writes a sine tone of `hz` at half of full scale: 16-bit, 8 kHz, mono WAV.
pub fn write_tone(path: &Path, hz: u32, seconds: u32) {
    let finished = run_bounded(
        Command::new(require_tool("sox"))
            .args(["-n", "-r", &SAMPLE_RATE.to_string(), "-c", "1", "-b", "16"])
            .args(["-e", "signed-integer"])
            .arg(path)
            .args(["synth", &seconds.to_string(), "sine", &hz.to_string()])
            .args(["vol", "0.5"]),
        Duration::from_secs(20),
    );
    assert!(
        finished.succeeded(),
        "sox could not write the tone {}: {}",
        path.display(),
        finished.describe()
    );
}

/// The samples of a WAV file (any format sox reads), as 16-bit mono at [`SAMPLE_RATE`],
/// scaled to -1.0 ..= 1.0.
pub fn read_samples(wav: &Path) -> Vec<f64> {
    let raw = wav.with_extension("raw");
    let finished = run_bounded(
        Command::new(require_tool("sox"))
            .arg(wav)
            .args([
                "-t",
                "raw",
                "-e",
                "signed-integer",
                "-b",
                "16",
                "-L",
                "-c",
                "1",
            ])
            .args(["-r", &SAMPLE_RATE.to_string()])
            .arg(&raw),
        Duration::from_secs(20),
    );
    assert!(
        finished.succeeded(),
        "sox could not read {}: {}",
        wav.display(),
        finished.describe()
    );
    let bytes = fs::read(&raw).unwrap_or_else(|error| panic!("{}: {error}", raw.display()));
    bytes
        .chunks_exact(2)
        .map(|pair| f64::from(i16::from_le_bytes([pair[0], pair[1]])) / 32_768.0)
        .collect()
}

// ── tone detection ─────────────────────────────────────────────────────────────────────

/// 20 ms: one G.711 packet, and a whole number of periods of every tone used here (a
/// multiple of 50 Hz), so a pure tone puts all of a frame's energy in its Goertzel bin.
pub const FRAME: usize = 160;

/// A frame quieter than this RMS (of full scale) counts as silence.
pub const SILENCE_RMS: f64 = 0.05;

/// A frame carries a tone when at least this share of its energy is at the tone's frequency.
pub const TONE_PURITY: f64 = 0.9;

/// What a recording holds, frame by frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneReport {
    /// Length of the recording.
    pub seconds: f64,
    /// RMS of the whole recording, of full scale.
    pub rms: f64,
    /// Time in frames louder than [`SILENCE_RMS`].
    pub loud_seconds: f64,
    /// Time in frames carrying the expected tone.
    pub tone_seconds: f64,
    /// Time in frames carrying the other tone (the one this side played itself).
    pub other_tone_seconds: f64,
    /// Mean share of the energy at the expected frequency over the loud frames.
    pub mean_purity: f64,
}

impl ToneReport {
    /// Analyses `samples` at [`SAMPLE_RATE`] for a tone of `hz`; `other_hz` is the tone
    /// that must not be there.
    pub fn analyse(samples: &[f64], hz: u32, other_hz: u32) -> ToneReport {
        let frame_seconds = FRAME as f64 / f64::from(SAMPLE_RATE);
        let mut report = ToneReport {
            seconds: samples.len() as f64 / f64::from(SAMPLE_RATE),
            rms: rms(samples),
            loud_seconds: 0.0,
            tone_seconds: 0.0,
            other_tone_seconds: 0.0,
            mean_purity: 0.0,
        };
        let mut purity_sum = 0.0;
        let mut loud_frames = 0_u32;
        for frame in samples.chunks_exact(FRAME) {
            if rms(frame) < SILENCE_RMS {
                continue;
            }
            loud_frames += 1;
            report.loud_seconds += frame_seconds;
            let expected = purity(frame, hz);
            purity_sum += expected;
            if expected >= TONE_PURITY {
                report.tone_seconds += frame_seconds;
            }
            if purity(frame, other_hz) >= TONE_PURITY {
                report.other_tone_seconds += frame_seconds;
            }
        }
        if loud_frames > 0 {
            report.mean_purity = purity_sum / f64::from(loud_frames);
        }
        report
    }
}

fn rms(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt()
}

/// The share of the frame's energy at `hz` (Goertzel), 0.0 ..= 1.0 for a frame holding a
/// whole number of the tone's periods.
pub fn purity(frame: &[f64], hz: u32) -> f64 {
    let energy: f64 = frame.iter().map(|s| s * s).sum();
    if energy == 0.0 {
        return 0.0;
    }
    let n = frame.len() as f64;
    let omega = 2.0 * std::f64::consts::PI * f64::from(hz) / f64::from(SAMPLE_RATE);
    let coefficient = 2.0 * omega.cos();
    let (mut previous, mut before) = (0.0, 0.0);
    for sample in frame {
        let current = sample + coefficient * previous - before;
        before = previous;
        previous = current;
    }
    let power = previous * previous + before * before - coefficient * previous * before;
    // A sinusoid of amplitude A over N samples: power = (N·A/2)², energy = N·A²/2.
    (2.0 * power / (n * energy)).min(1.0)
}
