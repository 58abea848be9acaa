//! JSON pointers under construction, and problems placed by them: how the rule compiler (and any
//! later check of a loaded file) says where in a file something is wrong, before
//! [`super::Placer`] turns the pointer into file:line:column. The one place a key becomes a
//! pointer's token ([`escape`]) and back ([`unescape`]).

use std::borrow::Cow;

/// `key` as one JSON-pointer token (RFC 6901): `~` written `~0`, `/` written `~1`.
pub fn escape(key: &str) -> Cow<'_, str> {
    match key.contains(['~', '/']) {
        true => Cow::Owned(key.replace('~', "~0").replace('/', "~1")),
        false => Cow::Borrowed(key),
    }
}

/// The key one JSON-pointer token stands for: `~1` read `/`, then `~0` read `~`.
pub fn unescape(token: &str) -> Cow<'_, str> {
    match token.contains('~') {
        true => Cow::Owned(token.replace("~1", "/").replace("~0", "~")),
        false => Cow::Borrowed(token),
    }
}

/// A problem in a rule, placed by JSON pointer within the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub pointer: String,
    pub message: String,
}

/// A JSON pointer under construction, for placing compile errors.
#[derive(Debug, Clone, Default)]
pub struct Pointer(String);

impl Pointer {
    pub fn root() -> Self {
        Self(String::new())
    }

    pub fn new(pointer: &str) -> Self {
        Self(pointer.to_owned())
    }

    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}/{}", self.0, escape(key)))
    }

    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}/{i}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn error(&self, message: impl Into<String>) -> CompileError {
        CompileError {
            pointer: self.0.clone(),
            message: message.into(),
        }
    }
}

/// One step of a JSON pointer, unescaped (`~1` is `/`, `~0` is `~`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A list position: a token of digits only (a pointer alone cannot tell it from a key made of
    /// digits).
    Index(String),
    Key(String),
}

/// The steps of `pointer` (`/destinations/0/pixel_id`), in order.
pub fn tokens(pointer: &str) -> impl Iterator<Item = Token> + '_ {
    pointer.split('/').skip(1).map(|token| {
        let token = unescape(token).into_owned();
        match !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            true => Token::Index(token),
            false => Token::Key(token),
        }
    })
}
