//! Where the CLI finds its server and token: a flag, else the environment, else the config file
//! (`$AUTOSCALER_CONFIG`, else `$XDG_CONFIG_HOME/autoscaler/config.yaml`, else
//! `~/.config/autoscaler/config.yaml`).

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;
use url::Url;

/// The server used when nothing names one: `autoscaler run`'s default address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ConnectionArgs {
    /// The autoscaler's address, such as `https://autoscaler.example.com` [default: the config file's
    /// `server`, else http://127.0.0.1:8080].
    #[arg(long, env = "AUTOSCALER_SERVER", global = true)]
    pub server: Option<String>,
    /// An API token (one of the service's AUTOSCALER_API_TOKENS) [default: the config file's `token`].
    #[arg(long, env = "AUTOSCALER_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// The config file (YAML with `server` and `token`).
    #[arg(long, env = "AUTOSCALER_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// What the config file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    server: Option<String>,
    token: Option<String>,
}

/// Where and as whom the CLI talks.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: Url,
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("reading the config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path}: {problem}")]
    Parse { path: PathBuf, problem: String },
    #[error("the server address {value:?} ({from}): {problem}")]
    Server {
        value: String,
        from: &'static str,
        problem: String,
    },
    #[error(
        "no API token: pass --token, set AUTOSCALER_TOKEN, or put `token:` in the config file ({})",
        path.as_deref().map_or_else(|| "none found".to_owned(), |p| p.display().to_string())
    )]
    NoToken { path: Option<PathBuf> },
}

impl Settings {
    pub fn resolve(args: &ConnectionArgs) -> Result<Self, SettingsError> {
        let path = args.config.clone().or_else(default_config_path);
        // A file named explicitly must exist; the default one may be absent.
        let file = match &path {
            Some(path) if args.config.is_some() || path.exists() => read_config(path)?,
            _ => ConfigFile::default(),
        };
        let (server, from) = match (&args.server, file.server) {
            (Some(server), _) => (server.clone(), "--server or AUTOSCALER_SERVER"),
            (None, Some(server)) => (server, "the config file"),
            (None, None) => (DEFAULT_SERVER.to_owned(), "the default"),
        };
        let token = args
            .token
            .clone()
            .or(file.token)
            .filter(|t| !t.trim().is_empty())
            .ok_or(SettingsError::NoToken { path: path.clone() })?;
        Ok(Self {
            server: parse_server(&server, from)?,
            token: token.trim().to_owned(),
        })
    }
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(base.join("autoscaler").join("config.yaml"))
}

fn read_config(path: &Path) -> Result<ConfigFile, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_owned(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_yaml::from_str(&text).map_err(|e| SettingsError::Parse {
        path: path.to_owned(),
        problem: e.to_string(),
    })
}

fn parse_server(value: &str, from: &'static str) -> Result<Url, SettingsError> {
    let problem = |problem: &str| SettingsError::Server {
        value: value.to_owned(),
        from,
        problem: problem.to_owned(),
    };
    let url = Url::parse(value).map_err(|e| problem(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(problem("must be an http:// or https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(problem("must not have a query or a fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(server: Option<&str>, token: Option<&str>, config: Option<&Path>) -> ConnectionArgs {
        ConnectionArgs {
            server: server.map(str::to_owned),
            token: token.map(str::to_owned),
            config: config.map(Path::to_owned),
        }
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let dir = tempfile::tempdir().expect("a value");
        let path = dir.path().join("config.yaml");
        std::fs::write(
            &path,
            "server: http://from-file:1\ntoken: file-token-0123456789\n",
        )
        .expect("a value");

        let from_file = Settings::resolve(&args(None, None, Some(&path))).expect("a value");
        assert_eq!(from_file.server.as_str(), "http://from-file:1/");
        assert_eq!(from_file.token, "file-token-0123456789");

        let from_flags = Settings::resolve(&args(
            Some("https://flag.example"),
            Some("flag-token"),
            Some(&path),
        ))
        .expect("a value");
        assert_eq!(from_flags.server.as_str(), "https://flag.example/");
        assert_eq!(from_flags.token, "flag-token");
    }

    #[test]
    fn a_named_config_file_must_exist_and_be_valid() {
        let dir = tempfile::tempdir().expect("a value");
        let missing = dir.path().join("absent.yaml");
        assert!(matches!(
            Settings::resolve(&args(None, Some("t"), Some(&missing))),
            Err(SettingsError::Read { .. })
        ));
        let typo = dir.path().join("typo.yaml");
        std::fs::write(&typo, "sever: http://x\n").expect("a value");
        let error = Settings::resolve(&args(None, Some("t"), Some(&typo))).expect_err("an error");
        assert!(error.to_string().contains("sever"), "{error}");
    }

    #[test]
    fn no_token_anywhere_is_an_error_that_says_where_to_put_one() {
        let dir = tempfile::tempdir().expect("a value");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "server: http://x:1\n").expect("a value");
        let error = Settings::resolve(&args(None, None, Some(&path))).expect_err("an error");
        assert!(matches!(error, SettingsError::NoToken { .. }));
        assert!(error.to_string().contains("AUTOSCALER_TOKEN"), "{error}");
    }

    #[test]
    fn the_server_must_be_an_http_url() {
        for bad in ["127.0.0.1:8080", "ftp://x", "http://x/?a=b"] {
            let error = Settings::resolve(&args(Some(bad), Some("t"), None)).expect_err("an error");
            assert!(
                matches!(error, SettingsError::Server { .. }),
                "{bad}: {error}"
            );
        }
    }
}
