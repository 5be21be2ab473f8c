//! A small SMTP server on loopback for mail tests: a real SMTP conversation, each message
//! handed to the test as it was received.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One message as the SMTP listener received it.
#[derive(Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// A small SMTP server (RFC 5321): greets, answers EHLO, takes MAIL, RCPT and DATA (with
/// dot-unstuffing), RSET, NOOP and QUIT, and hands each message over.
pub async fn smtp_listener(listener: TcpListener) -> mpsc::UnboundedReceiver<Received> {
    let (deliver, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let deliver = deliver.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read);
                write
                    .write_all(b"220 test.local ESMTP ready\r\n")
                    .await
                    .ok();
                let (mut from, mut to) = (String::new(), Vec::new());
                let mut line = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let command = line.trim_end().to_owned();
                    let upper = command.to_ascii_uppercase();
                    let answer: &[u8] = if upper.starts_with("EHLO") {
                        b"250-test.local\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n"
                    } else if upper.starts_with("HELO") {
                        b"250 test.local\r\n"
                    } else if let Some(rest) = upper.strip_prefix("MAIL FROM:") {
                        from = command[command.len() - rest.len()..].trim().to_owned();
                        b"250 OK\r\n"
                    } else if let Some(rest) = upper.strip_prefix("RCPT TO:") {
                        to.push(command[command.len() - rest.len()..].trim().to_owned());
                        b"250 OK\r\n"
                    } else if upper == "DATA" {
                        write
                            .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                            .await
                            .ok();
                        let mut data = String::new();
                        loop {
                            line.clear();
                            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            data.push_str(line.strip_prefix('.').unwrap_or(&line));
                        }
                        deliver
                            .send(Received {
                                from: std::mem::take(&mut from),
                                to: std::mem::take(&mut to),
                                data,
                            })
                            .ok();
                        b"250 queued\r\n"
                    } else if upper == "RSET" || upper == "NOOP" {
                        b"250 OK\r\n"
                    } else if upper == "QUIT" {
                        write.write_all(b"221 bye\r\n").await.ok();
                        return;
                    } else {
                        b"502 command not implemented\r\n"
                    };
                    write.write_all(answer).await.ok();
                }
            });
        }
    });
    received
}
