#!/usr/bin/env python3
"""Voice benchmarks against a release `switchboard demo` on loopback (see docs/benchmarks.md).

The server runs pinned to core 0 and every sipp to core 1. Two measurements:

* call rate: sipp's `uac` scenario calls the demo number (the IVR answers and plays its menu
  prompt); the caller hangs up after one second. The rate steps up until a step has a failed
  call (or the top step passes); each step reports failed calls, retransmissions and the
  server's CPU.
* bridged calls: N agents (created through the API, phones registered with digest
  authentication, all answered by one sipp UAS that echoes RTP) and N callers streaming G.711
  A-law in 20 ms packets, relayed caller -> Switchboard -> agent -> Switchboard -> caller.
  Reports the server's CPU per call per second and memory per call over a steady window, and
  packet counts from the call records and the kernel's UDP counters. Every answered call is
  recorded (the product's default); BENCH_RECORD=off turns recording off for the Sales queue
  (`record_calls: false`), and BENCH_RECORD=both runs the bridged calls both ways, each on a
  fresh server, and prints the cost of recording as a ratio. With recording on, every call's
  recording is checked afterwards: complete, of the call's length, and of the right size.
  BENCH_UPLOADS=N queues N finished recordings of a minute for a webhook CRM (here, taking
  BENCH_UPLOAD_MBPS MB/s, 20 by default) once the calls are up, so that they upload through the
  steady window.
  BENCH_MONITOR=listen|barge puts one supervisor on every bridged call, on a SIP phone (a third
  sipp that answers; for barge it talks back with -rtp_echo, for listen it stays silent), and
  BENCH_MONITOR=all runs the bridged calls unmonitored, listened to and barged into, each on a
  fresh server, and prints each cost as a ratio of the unmonitored one (recorded in all three
  unless BENCH_RECORD=off; BENCH_RECORD=both adds an unrecorded run and the recording ratio).

Only the standard library: urllib for the API, a UDP socket for REGISTER.
"""

import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "switchboard")
CALLER_XML = os.path.join(ROOT, "crates", "switchboard-server", "benches", "sipp", "bridged_caller.xml")
AGENT_XML = os.path.join(ROOT, "crates", "switchboard-server", "benches", "sipp", "echo_agent.xml")
HTTP = "127.0.0.1:18480"
SIP_PORT = 25460
UAS_PORT = 25490
MONITOR_PORT = 25520
# The demo carrier's address: the emergency service of the emergency probe listens here.
PSAP_PORT = 25496
# A mail server nobody listens on: the notification mail of an emergency call waits for it.
SMTP_DOWN = "smtp://127.0.0.1:25499"
PASSWORD = "bench-password-1"
BENCH_NUMBER = "15550111"


def log(*args):
    print(*args, flush=True)


class Api:
    def __init__(self):
        self.cookie = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://{HTTP}{path}", data=data, method=method)
        request.add_header("content-type", "application/json")
        if self.cookie:
            request.add_header("cookie", self.cookie)
        with urllib.request.urlopen(request, timeout=30) as response:
            if self.cookie is None:
                cookie = response.headers.get("set-cookie")
                if cookie:
                    self.cookie = cookie.split(";")[0]
            text = response.read()
            return json.loads(text) if text else None


def stat_cpu(text):
    """User plus system CPU seconds from a /proc stat line."""
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        return stat_cpu(f.read())


def thread_cpu(pid):
    """CPU seconds per thread name (tokio's workers, the recordings writer, ...)."""
    totals = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        totals[name] = totals.get(name, 0) + stat_cpu(text)
    return totals


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def socket_drops(first, last):
    """Datagrams the kernel dropped on Switchboard's RTP sockets (ports first..=last)."""
    total = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            port = int(fields[1].split(":")[1], 16)
            if first <= port <= last:
                total += int(fields[-1])
    return total


def udp_counters():
    with open("/proc/net/snmp") as f:
        lines = [l.split() for l in f if l.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


def start_server(data_dir, rtp_ports):
    env = dict(os.environ)
    env.update(
        SWITCHBOARD_DATA_DIR=data_dir,
        SWITCHBOARD_HTTP=HTTP,
        SWITCHBOARD_SIP=f"127.0.0.1:{SIP_PORT}",
        SWITCHBOARD_DEMO_PASSWORD=PASSWORD,
        SWITCHBOARD_RTP_PORTS=rtp_ports,
        SWITCHBOARD_RING_SECONDS="30",
        SWITCHBOARD_DEMO_CARRIER=f"127.0.0.1:{PSAP_PORT}",
        SWITCHBOARD_SMTP_URL=SMTP_DOWN,
        SWITCHBOARD_TRUNK_MAX_CALLS="100000",
        SWITCHBOARD_TRUNK_MAX_CPS="100000",
        RUST_LOG="warn",
    )
    if os.environ.get("SWITCHBOARD_DATABASE_URL"):
        env["SWITCHBOARD_DATABASE_URL"] = os.environ["SWITCHBOARD_DATABASE_URL"]
    server = subprocess.Popen(
        ["taskset", "-c", "0", BINARY, "demo"],
        env=env,
        stdout=open(os.path.join(data_dir, "server.log"), "w"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://{HTTP}/healthz", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def sipp(args, cwd, wait=True):
    command = ["taskset", "-c", "1", "sipp", "-nostdin", "-i", "127.0.0.1"] + args
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if wait:
        return process.wait()
    return process


def call_rate(workdir, pid, rates, seconds):
    log("\n== Call rate: answer, play the menu prompt for 1 s, caller hangs up ==")
    log(f"   sipp -sn uac -s 15550100 -d 1000 -r RATE -m RATE*{seconds} 127.0.0.1:{SIP_PORT}")
    # Warm the prompt cache (text-to-speech renders once).
    sipp(["-sn", "uac", "-s", "15550100", "-d", "1000", "-m", "1", "-timeout", "30", "-timeout_error",
          "-p", "25471", f"127.0.0.1:{SIP_PORT}"], workdir)
    best = None
    results = []
    for rate in rates:
        screen = os.path.join(workdir, f"uac_{rate}.txt")
        before_cpu, before_wall = cpu_seconds(pid), time.time()
        code = sipp(["-sn", "uac", "-s", "15550100", "-d", "1000", "-r", str(rate), "-m", str(rate * seconds),
                     "-timeout", str(seconds + 60), "-timeout_error", "-trace_screen", "-screen_file", screen,
                     "-p", "25471", f"127.0.0.1:{SIP_PORT}"], workdir)
        cpu, wall = cpu_seconds(pid) - before_cpu, time.time() - before_wall
        text = open(screen).read() if os.path.exists(screen) else ""
        failed = re.search(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
        failed = int(failed.group(1)) if failed else -1
        retrans = sum(int(m) for m in re.findall(r"(?:INVITE|BYE) ---------->\s+\d+\s+(\d+)", text))
        results.append((rate, code, failed, retrans, cpu / wall))
        log(f"   {rate:5d} cps: sipp exit {code}, failed calls {failed}, retransmissions {retrans}, "
            f"server CPU {100 * cpu / wall:.0f}% of a core")
        if code != 0 or failed != 0:
            break
        best = rate
    log(f"   highest rate with no failed call: {best} cps")
    return best, results


def register(sock, username, contact_port):
    """REGISTER with digest authentication, as a phone would."""
    call_id = uuid.uuid4().hex
    local = sock.getsockname()

    def message(cseq, authorization=""):
        return (f"REGISTER sip:127.0.0.1:{SIP_PORT} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{local[1]};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{username}@127.0.0.1>;tag={call_id[:8]}\r\n"
                f"To: <sip:{username}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
                f"Contact: <sip:{username}@127.0.0.1:{contact_port}>\r\nExpires: 3600\r\n"
                f"{authorization}Content-Length: 0\r\n\r\n").encode()

    sock.sendto(message(1), ("127.0.0.1", SIP_PORT))
    answer = sock.recv(65536).decode()
    nonce = re.search(r'nonce="([^"]+)"', answer).group(1)
    uri = f"sip:127.0.0.1:{SIP_PORT}"
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
    ha1 = md5(f"{username}:switchboard:{PASSWORD}")
    ha2 = md5(f"REGISTER:{uri}")
    cnonce = uuid.uuid4().hex[:16]
    response = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
    authorization = (f'Authorization: Digest username="{username}", realm="switchboard", nonce="{nonce}", '
                     f'uri="{uri}", response="{response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="{cnonce}"\r\n')
    sock.sendto(message(2, authorization), ("127.0.0.1", SIP_PORT))
    answer = sock.recv(65536).decode()
    if not answer.startswith("SIP/2.0 200"):
        raise SystemExit(f"registration of {username} failed: {answer.splitlines()[0]}")


def sip_response(request, status, reason):
    """A response to `request` with the headers RFC 3261 section 8.2.6 copies."""
    copied = []
    for line in request.split("\r\n")[1:]:
        name = line.split(":", 1)[0].strip().lower()
        if name in ("via", "from", "to", "call-id", "cseq"):
            if name == "to" and ";tag=" not in line:
                line += ";tag=bench"
            copied.append(line)
    return (f"SIP/2.0 {status} {reason}\r\n" + "\r\n".join(copied) + "\r\nContent-Length: 0\r\n\r\n").encode()


def header(message, name):
    match = re.search(rf"^{name}:\s*(.*)$", message, re.MULTILINE | re.IGNORECASE)
    return match.group(1).strip() if match else ""


# The kernel's receive time of each datagram (CLOCK_REALTIME), so that a round's time ends when
# the INVITE reached this machine's socket, not when this script got around to reading it.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def stamped(sock):
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


def next_request(sock, method, deadline=5.0, arrival=None):
    """The next `method` request on `sock` (others are answered as a phone would, or skipped).
    With `arrival` (a list), appends the kernel's receive time of the request (seconds since
    the epoch) when the socket is `stamped`."""
    end = time.time() + deadline
    while time.time() < end:
        sock.settimeout(max(0.01, end - time.time()))
        try:
            data, ancillary, _, source = sock.recvmsg(65536, 64)
        except socket.timeout:
            break
        text = data.decode(errors="replace")
        if text.startswith(method + " "):
            if arrival is not None:
                received = time.time()
                for level, kind, value in ancillary:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                        seconds, nanoseconds = struct.unpack("qq", value[:16])
                        received = seconds + nanoseconds / 1e9
                arrival.append(received)
            return text, source
        if text.startswith("CANCEL "):
            sock.sendto(sip_response(text, 200, "OK"), source)
    raise SystemExit(f"no {method} arrived in {deadline} s")


def phone_rings_then_stops(phone, invite, source):
    """The agent's phone rings for `invite` until Switchboard cancels it."""
    phone.sendto(sip_response(invite, 180, "Ringing"), source)
    cancel, source = next_request(phone, "CANCEL")
    phone.sendto(sip_response(cancel, 200, "OK"), source)
    phone.sendto(sip_response(invite, 487, "Request Terminated"), source)


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def emergency_probe(rounds):
    """An agent (the demo's agent1, located at the demo's head office, with a registered SIP
    phone) dials 911 `rounds` times while the bridged calls run and the mail server is down:
    from the API call to the INVITE reaching the emergency service (the demo carrier), which
    answers busy. After each, the emergency service calls the callback number back: from its
    INVITE to the agent's phone ringing; then it hangs up."""
    log(f"\n   emergency probe: {rounds} emergency calls and callbacks beside the bridged calls, mail server down ({SMTP_DOWN})")
    agent = Api()
    agent.call("POST", "/api/v1/auth/login", {"username": "agent1", "password": PASSWORD})
    phone = stamped(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    phone.bind(("127.0.0.1", 0))
    phone.settimeout(5)
    register(phone, "agent1", phone.getsockname()[1])
    psap = stamped(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    psap.bind(("127.0.0.1", PSAP_PORT))
    service = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    service.bind(("127.0.0.1", 0))
    service.settimeout(5)
    dial_ms, ring_ms = [], []
    for n in range(rounds):
        started, arrived = time.time(), []
        placed = agent.call("POST", "/api/v1/calls", {"number": "911"})
        invite, source = next_request(psap, "INVITE", arrival=arrived)
        dial_ms.append(1000 * (arrived[0] - started))
        callback = placed["caller"]
        psap.sendto(sip_response(invite, 486, "Busy Here"), source)
        ringing, phone_source = next_request(phone, "INVITE")
        phone_rings_then_stops(phone, ringing, phone_source)
        time.sleep(0.05)
        # The emergency service calls back on the leased number.
        local = service.getsockname()[1]
        call_id, branch = uuid.uuid4().hex, "z9hG4bK" + uuid.uuid4().hex
        sdp = ("v=0\r\no=psap 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               "m=audio 40998 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
        head = (f"sip:{callback}@127.0.0.1:{SIP_PORT} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{local};branch={branch}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:911@127.0.0.1:{local}>;tag=psap{n}\r\nTo: <sip:{callback}@127.0.0.1>\r\n"
                f"Call-ID: {call_id}\r\n")
        started, arrived = time.time(), []
        service.sendto((f"INVITE {head}CSeq: 1 INVITE\r\nContact: <sip:911@127.0.0.1:{local}>\r\n"
                        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode(),
                       ("127.0.0.1", SIP_PORT))
        ringing, phone_source = next_request(phone, "INVITE", arrival=arrived)
        ring_ms.append(1000 * (arrived[0] - started))
        phone.sendto(sip_response(ringing, 180, "Ringing"), phone_source)
        # Switchboard answered the service; it acknowledges and hangs up.
        while True:
            answer = service.recv(65536).decode(errors="replace")
            if answer.startswith("SIP/2.0 200") and "INVITE" in header(answer, "CSeq"):
                break
        to = header(answer, "To")
        service.sendto((f"ACK {head.replace(f'To: <sip:{callback}@127.0.0.1>', 'To: ' + to)}CSeq: 1 ACK\r\n"
                        f"Content-Length: 0\r\n\r\n").encode().replace(branch.encode(), (branch + "a").encode()),
                       ("127.0.0.1", SIP_PORT))
        service.sendto((f"BYE {head.replace(f'To: <sip:{callback}@127.0.0.1>', 'To: ' + to)}CSeq: 2 BYE\r\n"
                        f"Content-Length: 0\r\n\r\n").encode().replace(branch.encode(), (branch + "b").encode()),
                       ("127.0.0.1", SIP_PORT))
        cancel, phone_source = next_request(phone, "CANCEL")
        phone.sendto(sip_response(cancel, 200, "OK"), phone_source)
        phone.sendto(sip_response(ringing, 487, "Request Terminated"), phone_source)
        time.sleep(0.05)
    log(f"   dial to INVITE leaving: median {percentile(dial_ms, 0.5):.1f} ms, p99 {percentile(dial_ms, 0.99):.1f} ms, "
        f"max {max(dial_ms):.1f} ms")
    log(f"   callback INVITE to the agent's phone ringing: median {percentile(ring_ms, 0.5):.1f} ms, "
        f"p99 {percentile(ring_ms, 0.99):.1f} ms, max {max(ring_ms):.1f} ms")
    for sock in (phone, psap, service):
        sock.close()
    return dial_ms, ring_ms


def upload_sink(mbps):
    """A webhook CRM on 127.0.0.1 that takes each request's body at `mbps` MB/s and answers
    200; counts the recording parts and bytes it took."""
    import http.server
    import threading
    taken = {"parts": 0, "bytes": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length, got, started = int(self.headers.get("content-length", 0)), 0, time.time()
            while got < length:
                chunk = self.rfile.read(min(65536, length - got))
                if not chunk:
                    break
                got += len(chunk)
                ahead = got / (mbps * 1e6) - (time.time() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if self.headers.get("x-switchboard-event") == "recording_part":
                taken["parts"] += 1
                taken["bytes"] += got
            body = b'{"id": "bench"}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/crm", taken


def queue_uploads(api, data_dir, count, url):
    """Points the CRM connector at `url` and queues `count` finished recordings of a minute
    (plain WAV files, as recordings stored before encryption at rest are, with their calls'
    tickets) for upload, as the server queues a recording when its call ends."""
    import sqlite3
    settings = api.call("GET", "/api/v1/integrations")
    for key in [k for k in settings if k.endswith("_set")]:
        settings.pop(key)
    settings.update(crm_connector="webhook", crm_webhook_url=url, crm_webhook_secret="bench-webhook-secret")
    api.call("PUT", "/api/v1/integrations", settings)
    size = 44 + 32 * 60_000
    audio = bytes((i * 7) & 0xFF for i in range(size))
    now = int(time.time() * 1000)
    database = sqlite3.connect(os.path.join(data_dir, "switchboard.db"), timeout=30)
    with database:
        for _ in range(count):
            recording, call, ticket = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
            key = f"rec-{recording}"
            folder = os.path.join(data_dir, "recordings", key[:2])
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, key), "wb") as f:
                f.write(audio)
            database.execute("INSERT INTO tickets (id, name, status, created_at, updated_at, call_id, phone) "
                             "VALUES (?, 'Phone User - bench', 'open', ?, ?, ?, '15557654321')", (ticket, now, now, call))
            database.execute("INSERT INTO recordings (id, call_id, started_at, ended_at, duration_ms, size_bytes, paused, "
                             "status, blob_key) VALUES (?, ?, ?, ?, 60000, ?, '[]', 'complete', ?)",
                             (recording, call, now - 60_000, now, size, key))
            database.execute("INSERT INTO jobs (id, kind, payload, state, run_at, attempts, created_at) "
                             "VALUES (?, 'recording_upload', ?, 'pending', ?, 0, ?)",
                             (str(uuid.uuid4()), json.dumps({"recording": recording, "part": 1}), now, now))
    database.close()
    return count * size


def monitors_now():
    """Users monitoring a call now, once their phone answered (the server's gauge)."""
    with urllib.request.urlopen(f"http://{HTTP}/metrics", timeout=30) as response:
        text = response.read().decode()
    found = re.search(r"^\w*call_monitors (\d+)", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def monitor_every_call(api, workdir, count, mode, hold_seconds):
    """One supervisor (the admin, on a SIP phone answered by its own sipp) monitors every live
    call in `mode`; returns the sipp and how many monitor legs answered."""
    me = api.call("GET", "/api/v1/auth/me")["user"]
    api.call("PUT", f"/api/v1/users/{me['id']}/sip-phone", {"password": PASSWORD})
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    register(sock, me["username"], MONITOR_PORT)
    args = ["-sf", AGENT_XML, "-p", str(MONITOR_PORT), "-mp", "46000", "-m", str(count),
            "-timeout", str(hold_seconds + 120)]
    phone = sipp((["-rtp_echo"] if mode == "barge" else []) + args, workdir, wait=False)
    time.sleep(1)
    live = [c for c in api.call("GET", "/api/v1/calls/live") if c["answered_at"]]
    started = time.time()
    refused = 0
    for call in live:
        try:
            api.call("POST", f"/api/v1/calls/{call['id']}/monitor", {"mode": mode})
        except urllib.error.HTTPError as error:
            # A call that ended meanwhile (404) or is not in conversation (409).
            refused += 1
            if refused <= 3:
                log(f"   monitoring call {call['id']} refused: {error.code} {error.read().decode(errors='replace')}")
    log(f"   {len(live) - refused} monitors started through the API in {time.time() - started:.0f} s ({refused} refused)")
    answered = 0
    while time.time() - started < 120:
        answered = monitors_now()
        if answered >= len(live) - refused:
            break
        time.sleep(1)
    log(f"   {answered} of {len(live)} calls have a supervisor answered in {mode} after {time.time() - started:.0f} s")
    if answered < len(live) and live:
        example = api.call("GET", f"/api/v1/calls/{live[0]['id']}/details")["participants"]
        log(f"   for example, a call's participants: {example}")
    return phone, answered


def bridged(workdir, api, pid, count, hold_seconds, window, record=True, monitor=None):
    log(f"\n== {count} concurrent bridged calls: caller sipp <-> Switchboard <-> agent sipp (G.711, 20 ms, relayed), "
        f"recording {'on' if record else 'off'}, {f'a supervisor in {monitor} on every call' if monitor else 'unmonitored'} ==")
    queues = api.call("GET", "/api/v1/queues")
    sales = next(q["id"] for q in queues if q["channel"] == "voice" and q["name"] == "Sales")
    api.call("PUT", f"/api/v1/queues/{sales}/recording", {"record_calls": record})
    api.call("PUT", f"/api/v1/voice/numbers/{BENCH_NUMBER}", {"entry_queue_id": sales})
    log(f"   creating {count} agents in Sales with SIP phones")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    for n in range(count):
        username = f"bench{n:05d}"
        user = api.call("POST", "/api/v1/users", {"username": username, "role": "agent", "queues": [sales]})
        api.call("PUT", f"/api/v1/users/{user['id']}/sip-phone", {"password": PASSWORD})
        register(sock, username, UAS_PORT)
        api.call("PUT", f"/api/v1/agents/{user['id']}/presence", {"presence": "available"})
    uas = sipp(["-sf", AGENT_XML, "-rtp_echo", "-p", str(UAS_PORT), "-mp", "40000", "-m", str(count),
                "-timeout", str(hold_seconds + 120)], workdir, wait=False)
    audio = os.path.join(workdir, "tone.al")
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-t", "al", audio, "synth", "10", "sine", "300", "vol", "0.3"],
                   check=True)
    scenario = os.path.join(workdir, "bridged_caller.xml")
    with open(CALLER_XML) as f, open(scenario, "w") as out:
        out.write(f.read().replace("AUDIO_FILE", audio))
    idle_rss = rss_kib(pid)
    log(f"   sipp -sf bridged_caller.xml -s {BENCH_NUMBER} -r 100 -l {count} -m {count} -d {hold_seconds * 1000} 127.0.0.1:{SIP_PORT}")
    caller = sipp(["-sf", scenario, "-s", BENCH_NUMBER, "-r", "100", "-l", str(count), "-m", str(count),
                   "-d", str(hold_seconds * 1000), "-timeout", str(hold_seconds + 120), "-timeout_error",
                   "-p", "25472", "-mp", "30000", f"127.0.0.1:{SIP_PORT}"], workdir, wait=False)
    # Wait until every call is answered.
    answered, started = 0, time.time()
    while time.time() - started < 120:
        live = api.call("GET", "/api/v1/calls/live")
        answered = sum(1 for c in live if c["answered_at"])
        if answered >= count:
            break
        time.sleep(1)
    log(f"   {answered} calls answered and bridged after {time.time() - started:.0f} s")
    phone = None
    if monitor:
        phone, _ = monitor_every_call(api, workdir, count, monitor, hold_seconds)
    uploads = int(os.environ.get("BENCH_UPLOADS", "0"))
    if uploads:
        mbps = float(os.environ.get("BENCH_UPLOAD_MBPS", "20"))
        url, taken = upload_sink(mbps)
        queued = queue_uploads(api, workdir, uploads, url)
        log(f"   {uploads} recordings ({queued / 1e6:.0f} MB) queued for a webhook CRM taking {mbps:g} MB/s")
    time.sleep(3)
    udp_before, ours_before = udp_counters(), socket_drops(20000, 29999)
    before_cpu, before_wall, rss = cpu_seconds(pid), time.time(), rss_kib(pid)
    before_threads = thread_cpu(pid)
    time.sleep(window)
    cpu, wall = cpu_seconds(pid) - before_cpu, time.time() - before_wall
    after_threads = thread_cpu(pid)
    shares = {name: after_threads[name] - before_threads.get(name, 0) for name in after_threads}
    shares = ", ".join(f"{name} {100 * spent / wall:.1f}%" for name, spent in
                       sorted(shares.items(), key=lambda item: -item[1]) if spent > 0)
    udp_after, ours_after = udp_counters(), socket_drops(20000, 29999)
    live = len(api.call("GET", "/api/v1/calls/live"))
    if uploads:
        log(f"   uploads so far: {taken['parts']} parts, {taken['bytes'] / 1e6:.0f} MB taken by the CRM")
    if os.environ.get("BENCH_EMERGENCY", "1") == "1":
        emergency_probe(int(os.environ.get("BENCH_EMERGENCY_ROUNDS", "50")))
    per_call_ms = 1000 * cpu / (live * wall) if live else float("nan")
    log(f"   steady window {wall:.0f} s with {live} calls: server CPU {100 * cpu / wall:.0f}% of a core, "
        f"{per_call_ms:.3f} ms of CPU per call per second")
    log(f"   CPU by thread (of a core): {shares}")
    log(f"   memory: {rss / 1024:.0f} MiB with the calls up, {idle_rss / 1024:.0f} MiB before: "
        f"{(rss - idle_rss) / max(live, 1):.0f} KiB per call")
    drops = {k: udp_after[k] - udp_before[k] for k in ("InErrors", "RcvbufErrors", "SndbufErrors") if k in udp_after}
    log(f"   kernel UDP receive errors on loopback during the window: {drops} "
        f"(the caller sipp does not read the audio sent back to it); on Switchboard's RTP sockets: {ours_after - ours_before}")
    caller_code, uas_code = caller.wait(), uas.wait()
    if phone:
        log(f"   supervisor's sipp exit {phone.wait()}")
    time.sleep(2)
    calls = [c for c in api.call("GET", f"/api/v1/calls?limit={count}") if c["did"] == BENCH_NUMBER]
    totals = {k: sum(c["rtp"][k] for c in calls) for k in ("from_caller", "to_agent", "from_agent", "to_caller")}
    forward = totals["to_agent"] / totals["from_caller"] if totals["from_caller"] else 0
    backward = totals["to_caller"] / totals["from_agent"] if totals["from_agent"] else 0
    log(f"   sipp caller exit {caller_code}, sipp agent exit {uas_code}; {len(calls)} call records")
    log(f"   RTP packets: {totals}")
    log(f"   relayed caller->agent {100 * forward:.3f}%, agent->caller {100 * backward:.3f}% of what arrived")
    if record:
        check_recordings(api, calls)
    return per_call_ms, (rss - idle_rss) / max(live, 1), totals, drops


def check_recordings(api, calls):
    """Every answered call has one complete recording as long as its talk time (within 0.5 s),
    whose size is the WAV header plus 32 bytes a millisecond (8 kHz, 16-bit, stereo)."""
    problems, total_bytes = [], 0
    for _ in range(60):
        recordings = {c["id"]: api.call("GET", f"/api/v1/calls/{c['id']}/recordings") for c in calls}
        if all(r and all(x["status"] == "complete" for x in r) for r in recordings.values()):
            break
        time.sleep(1)
    for call in calls:
        found = recordings[call["id"]]
        if len(found) != 1 or found[0]["status"] != "complete":
            problems.append((call["id"], [r["status"] for r in found]))
            continue
        recording = found[0]
        total_bytes += recording["size_bytes"]
        if abs(recording["duration_ms"] - (call["talk_ms"] or 0)) > 500 or \
                recording["size_bytes"] != 44 + 32 * recording["duration_ms"]:
            problems.append((call["id"], recording["duration_ms"], call["talk_ms"], recording["size_bytes"]))
    log(f"   recordings: {len(calls) - len(problems)} of {len(calls)} complete and of the call's length, "
        f"{total_bytes / 2**20:.0f} MiB written")
    for problem in problems[:10]:
        log(f"   recording problem: {problem}")


def main():
    rates = [int(r) for r in os.environ.get("BENCH_RATES", "250,500,750,1000,1250,1500").split(",")]
    count = int(os.environ.get("BENCH_CALLS", "1000"))
    # Starting 1,000 monitors through the API takes most of a minute: the calls last longer.
    monitoring = os.environ.get("BENCH_MONITOR", "off") != "off"
    hold = int(os.environ.get("BENCH_HOLD_SECONDS", "150" if monitoring else "60"))
    window = int(os.environ.get("BENCH_WINDOW_SECONDS", "20"))
    # Each measurement gets a fresh server and database, so one does not colour the other.
    phases = []
    if os.environ.get("BENCH_SKIP_RATE") != "1":
        phases.append("rate")
    record = os.environ.get("BENCH_RECORD", "on")
    monitor = os.environ.get("BENCH_MONITOR", "off")
    if os.environ.get("BENCH_SKIP_BRIDGED") != "1":
        # With monitoring, the unmonitored run to compare with is recorded (the default) unless
        # BENCH_RECORD=off; BENCH_RECORD=both adds the unrecorded run as well.
        phases += {"on": ["bridged"], "off": ["bridged-unrecorded"], "both": ["bridged-unrecorded", "bridged"]}[record]
        phases += {"off": [], "listen": ["bridged-listen"], "barge": ["bridged-barge"],
                   "all": ["bridged-listen", "bridged-barge"]}[monitor]
    costs = {}
    for phase in phases:
        workdir = tempfile.mkdtemp(prefix="switchboard-bench-voice-")
        server = start_server(workdir, "20000-29999")
        try:
            api = Api()
            api.call("POST", "/api/v1/auth/login", {"username": "admin", "password": PASSWORD})
            if phase == "rate":
                call_rate(workdir, server.pid, rates, 8)
            else:
                recorded = phase != "bridged-unrecorded" and record != "off"
                mode = phase.removeprefix("bridged-") if phase in ("bridged-listen", "bridged-barge") else None
                costs[phase] = bridged(workdir, api, server.pid, count, hold, window, record=recorded, monitor=mode)[0]
        finally:
            server.terminate()
            server.wait()
            subprocess.run(["rm", "-rf", os.path.join(workdir, "recordings")])
    if "bridged-unrecorded" in costs and "bridged" in costs:
        off, on = costs["bridged-unrecorded"], costs["bridged"]
        log(f"\nrecording every call: {on:.3f} against {off:.3f} ms of CPU per call per second: x{on / off:.3f}")
    base = costs.get("bridged-unrecorded" if record == "off" else "bridged")
    for mode in ("listen", "barge"):
        if base and f"bridged-{mode}" in costs:
            monitored = costs[f"bridged-{mode}"]
            log(f"\na supervisor in {mode} on every call: {monitored:.3f} against {base:.3f} ms of CPU per call per second: "
                f"x{monitored / base:.3f}")


if __name__ == "__main__":
    main()
