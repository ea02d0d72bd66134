//! Reading Flink's error texts, which are Java exceptions rendered as text.
//!
//! - A 5xx body is `{"errors": ["Internal server error.", "<Exception on server side:\n<class>:
//!   <message>\n\tat …\n\nEnd of exception on server side>"]}`: the cause is in the second entry.
//! - A 4xx body is `{"errors": ["<class>: <message>\n\tat …\nCaused by: <class>: <message>…"]}`: the
//!   top message can be generic ("Could not execute application.") with the cause in the deepest
//!   `Caused by:` line.
//! - A savepoint operation's `failure-cause.stack-trace` is the same kind of text.

use serde::Deserialize;

use super::super::error::Problem;
use super::super::http::{body_text, by_status};

/// Exceptions that only wrap another one: their name adds nothing to a message.
const WRAPPERS: [&str; 5] = [
    "RestHandlerException",
    "NotFoundException",
    "CompletionException",
    "ExecutionException",
    "FlinkRuntimeException",
];

/// One exception of a chain: the innermost class named on its line, and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    class: Option<String>,
    message: String,
}

impl Link {
    /// `java.util.concurrent.CompletionException: org.acme.FooException: text` names both classes;
    /// the innermost is the one that says what happened.
    fn parse(text: &str) -> (Vec<String>, Link) {
        let mut classes = Vec::new();
        let mut rest = text.trim();
        loop {
            let (head, tail) = match rest.split_once(": ") {
                Some((head, tail)) => (head, tail),
                None => (rest, ""),
            };
            if !is_class(head) {
                break;
            }
            classes.push(simple_name(head).to_owned());
            rest = tail.trim();
            if tail.is_empty() {
                break;
            }
        }
        let link = Link {
            class: classes.last().cloned(),
            message: rest.to_owned(),
        };
        (classes, link)
    }

    fn render(&self) -> String {
        match &self.class {
            Some(class) if self.message.is_empty() => class.clone(),
            Some(class) if !WRAPPERS.contains(&class.as_str()) => {
                format!("{class}: {}", self.message)
            }
            _ => self.message.clone(),
        }
    }
}

/// A Java exception as Flink prints it: the top line and its `Caused by:` chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JavaException {
    top: Link,
    deepest: Option<Link>,
    /// Every class named anywhere in the chain (simple names).
    classes: Vec<String>,
}

impl JavaException {
    pub(super) fn parse(text: &str) -> Self {
        let mut lines = text.lines().peekable();
        let mut classes = Vec::new();
        let mut top = None;
        let mut deepest = None;
        while let Some(line) = lines.next() {
            let start = if top.is_none() {
                Some(line)
            } else {
                line.strip_prefix("Caused by: ")
            };
            let Some(start) = start else { continue };
            // A message may go on over lines; frames (`\tat …`, `\t... 4 more`) and notes that
            // start with blanks are not part of it.
            let mut message = start.to_owned();
            while let Some(next) = lines.peek() {
                if next.is_empty() || next.starts_with(char::is_whitespace) {
                    break;
                }
                if next.starts_with("Caused by: ") {
                    break;
                }
                message.push(' ');
                message.push_str(next);
                lines.next();
            }
            let (named, link) = Link::parse(&message);
            classes.extend(named);
            if top.is_none() {
                top = Some(link);
            } else {
                deepest = Some(link);
            }
        }
        Self {
            top: top.unwrap_or(Link {
                class: None,
                message: String::new(),
            }),
            deepest,
            classes,
        }
    }

    /// Whether the chain names `class` (a simple name) anywhere.
    pub(super) fn names(&self, class: &str) -> bool {
        self.classes.iter().any(|c| c == class)
    }

    /// The top message, and the deepest cause when it says something the top does not.
    pub(super) fn summary(&self) -> String {
        let top = self.top.render();
        let text = match &self.deepest {
            Some(deep) if !deep.message.is_empty() && !top.contains(&deep.message) => {
                format!("{top} (cause: {})", deep.render())
            }
            _ => top,
        };
        text.chars().take(800).collect()
    }
}

/// `org.apache.flink.Foo$Bar`: dotted, each part an identifier, the last one capitalized.
fn is_class(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            let mut chars = p.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
        && parts
            .last()
            .and_then(|p| p.chars().next())
            .is_some_and(|c| c.is_ascii_uppercase())
}

fn simple_name(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

/// The exception in a Flink error body, wherever Flink put it.
fn exception_of(body: &[u8]) -> Option<JavaException> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<String>,
    }
    let errors: Errors = serde_json::from_slice(body).ok()?;
    let server_side = errors.errors.iter().find_map(|e| {
        e.strip_prefix("<Exception on server side:")
            .map(str::trim_start)
    });
    let text = server_side.or_else(|| errors.errors.first().map(String::as_str))?;
    Some(JavaException::parse(text))
}

/// The [`Problem`] a Flink error answer means. `jar_id`: the jar a run request named, so that a
/// missing jar (which Flink answers with a 500) is told apart from a passing fault.
pub(super) fn problem(status: u16, body: &[u8], jar_id: Option<&str>) -> Problem {
    let Some(exception) = exception_of(body) else {
        return by_status(status, body_text(body));
    };
    let message = exception.summary();
    if status >= 500 {
        // Flink answers "no such job" with a 500 on several endpoints (`/status`, the requirements).
        if exception.names("FlinkJobNotFoundException") {
            return Problem::NotFound(message);
        }
        if let Some(jar_id) = jar_id
            && message.contains("Jar file")
            && message.contains("does not exist")
        {
            return Problem::JarMissing {
                jar_id: jar_id.to_owned(),
                message,
            };
        }
        // e.g. the default scheduler asked for resource requirements: no retry changes that.
        if exception.names("UnsupportedOperationException") {
            return Problem::Refused { status, message };
        }
    }
    by_status(status, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(errors: &[&str]) -> Vec<u8> {
        serde_json::to_vec(&json!({ "errors": errors })).expect("json")
    }

    const SERVER_SIDE: &str = "<Exception on server side:\n";
    const END: &str = "\n\nEnd of exception on server side>";

    #[test]
    fn a_5xx_cause_is_read_from_the_server_side_entry() {
        let text = format!(
            "{SERVER_SIDE}java.lang.UnsupportedOperationException: The DefaultScheduler does not \
             support changing the parallelism.\n\tat org.apache.Foo.bar(Foo.java:1){END}"
        );
        let p = problem(500, &body(&["Internal server error.", &text]), None);
        assert_eq!(
            p,
            Problem::Refused {
                status: 500,
                message: "UnsupportedOperationException: The DefaultScheduler does not support \
                          changing the parallelism."
                    .to_owned()
            }
        );
    }

    #[test]
    fn a_5xx_job_not_found_is_not_found_and_other_5xx_are_unavailable() {
        let text = format!(
            "{SERVER_SIDE}org.apache.flink.runtime.messages.FlinkJobNotFoundException: Could not \
             find Flink job (ff)\n\tat x.Y.z(Y.java:1){END}"
        );
        let p = problem(500, &body(&["Internal server error.", &text]), None);
        assert_eq!(
            p,
            Problem::NotFound("FlinkJobNotFoundException: Could not find Flink job (ff)".into())
        );
        let text =
            format!("{SERVER_SIDE}java.io.IOException: disk full\n\tat x.Y.z(Y.java:1){END}");
        let p = problem(503, &body(&["Internal server error.", &text]), None);
        assert_eq!(
            p,
            Problem::Unavailable("HTTP 503: IOException: disk full".into())
        );
    }

    #[test]
    fn a_missing_jar_is_named_as_such() {
        let text = format!(
            "{SERVER_SIDE}java.util.concurrent.CompletionException: org.apache.flink.runtime.rest.\
             handler.RestHandlerException: Jar file /tmp/flink-web-upload/abc_x.jar does not \
             exist\n\tat x.Y.z(Y.java:1){END}"
        );
        let p = problem(
            500,
            &body(&["Internal server error.", &text]),
            Some("abc_x.jar"),
        );
        assert_eq!(
            p,
            Problem::JarMissing {
                jar_id: "abc_x.jar".into(),
                message: "Jar file /tmp/flink-web-upload/abc_x.jar does not exist".into()
            }
        );
    }

    #[test]
    fn a_4xx_drops_the_wrapper_class_and_adds_the_deepest_cause() {
        let text = "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute \
                    application.\n\tat a.B.c(B.java:1)\nCaused by: java.util.concurrent.\
                    CompletionException: org.apache.flink.util.FlinkRuntimeException: Could not \
                    execute application.\n\tat a.B.c(B.java:1)\n\t... 1 more\nCaused by: \
                    java.lang.RuntimeException: java.io.FileNotFoundException: Cannot find \
                    checkpoint or savepoint file/directory 'file:/x' on file system 'file'.\n\tat \
                    a.B.c(B.java:1)\nCaused by: java.io.FileNotFoundException: Cannot find \
                    checkpoint or savepoint file/directory 'file:/x' on file system 'file'.\n\tat \
                    a.B.c(B.java:1)\n";
        let p = problem(400, &body(&[text]), Some("j.jar"));
        assert_eq!(
            p,
            Problem::Refused {
                status: 400,
                message: "Could not execute application. (cause: FileNotFoundException: Cannot \
                          find checkpoint or savepoint file/directory 'file:/x' on file system \
                          'file'.)"
                    .into()
            }
        );
    }

    #[test]
    fn a_message_over_several_lines_is_kept_whole_and_notes_are_dropped() {
        let text = "org.apache.flink.runtime.rest.handler.RestHandlerException: The newly \
                    requested parallelism 500 for the job vertex a exceeds its maximum \
                    parallelism 128.\nThe newly requested parallelism 500 for the job vertex b \
                    exceeds its maximum parallelism 128.\n\tat a.B.c(B.java:1)\n";
        let e = JavaException::parse(text);
        assert_eq!(
            e.summary(),
            "The newly requested parallelism 500 for the job vertex a exceeds its maximum \
             parallelism 128. The newly requested parallelism 500 for the job vertex b exceeds \
             its maximum parallelism 128."
        );
        let text = "org.apache.flink.runtime.rest.handler.RestHandlerException: Request did not \
                    match expected format JarRunRequestBody.\n\tat a.B.c(B.java:1)\nCaused by: \
                    org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.exc.\
                    InvalidFormatException: Cannot deserialize value of type `Integer` from \
                    String \"three\"\n at [Source: REDACTED; line: 1, column: 16]\n";
        assert_eq!(
            JavaException::parse(text).summary(),
            "Request did not match expected format JarRunRequestBody. (cause: \
             InvalidFormatException: Cannot deserialize value of type `Integer` from String \
             \"three\")"
        );
    }

    #[test]
    fn text_that_is_not_an_exception_is_kept_and_404_stays_not_found() {
        let p = problem(
            404,
            &body(&["Unable to load requested file /no/such/path."]),
            None,
        );
        assert_eq!(
            p,
            Problem::NotFound("Unable to load requested file /no/such/path.".into())
        );
        let p = problem(502, b"<html>bad gateway</html>", None);
        assert_eq!(
            p,
            Problem::Unavailable("HTTP 502: <html>bad gateway</html>".into())
        );
        let e = JavaException::parse("Bad request, could not parse parameters: Cannot parse x.");
        assert_eq!(
            e.summary(),
            "Bad request, could not parse parameters: Cannot parse x."
        );
    }

    #[test]
    fn a_savepoint_failure_names_the_inner_exception() {
        let trace = "java.util.concurrent.CompletionException: org.apache.flink.runtime.messages.\
                     FlinkJobNotFoundException: Could not find Flink job (ab)\n\tat a.B.c(B.java:1)";
        let e = JavaException::parse(trace);
        assert!(e.names("FlinkJobNotFoundException"));
        assert_eq!(
            e.summary(),
            "FlinkJobNotFoundException: Could not find Flink job (ab)"
        );
    }
}
