//! A one-trick S3 endpoint on loopback that answers every request with the same error, for
//! what moto cannot be made to do: deny access, throttle, fail with a 500.

use cryptomon_core::{S3Location, S3Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A server answering every request with one S3 error; stopped when dropped.
#[derive(Debug)]
pub struct FakeS3 {
    endpoint: String,
    task: JoinHandle<()>,
}

impl FakeS3 {
    /// Starts a server on `127.0.0.1:0` that answers `status` with an S3 error document of
    /// `code`.
    pub async fn start(status: u16, code: &str) -> FakeS3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>fake {code} for a test</Message><RequestId>test</RequestId></Error>"
        );
        let response = format!(
            "HTTP/1.1 {status} Fake\r\nContent-Type: application/xml\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    // Read the head and whatever body arrives with it; the answer does not
                    // depend on the request.
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        FakeS3 { endpoint, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// An [`S3Store`] at `location` (`s3://bucket/prefix`) on this server, with the SDK's own
    /// retries off so each call is one request.
    pub async fn store(&self, location: &str) -> S3Store {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(crate::moto::credentials())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        S3Store::from_sdk_config(&config, S3Location::parse(location).unwrap())
    }
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}
