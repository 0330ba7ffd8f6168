//! Cursors: the last `seq` a client has seen. Every transport resolves the client's cursor the
//! same way: absent = the inbox's head (no backlog), `0` = everything still retained, a number
//! at or below the head = resume there, above the head or not a number = `bad_cursor`, below
//! the retention horizon = `cursor_expired` (the client reloads history).

use crate::store::InboxHead;

/// What the client asked for, before looking at the inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorParam {
    Head,
    After(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorError {
    Bad,
    Expired,
}

impl CursorParam {
    /// Parse the first of the given raw values that is present (e.g. `Last-Event-ID`, then
    /// `cursor`, then `lastEventId`).
    pub fn parse(raw: Option<&str>) -> Result<CursorParam, CursorError> {
        match raw.map(str::trim) {
            None | Some("") => Ok(CursorParam::Head),
            Some(value) => match value.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(CursorParam::After(n)),
                _ => Err(CursorError::Bad),
            },
        }
    }

    /// The seq to read after, for an inbox at `head`.
    pub fn resolve(self, head: InboxHead) -> Result<i64, CursorError> {
        match self {
            CursorParam::Head => Ok(head.last_seq),
            CursorParam::After(0) => Ok(head.retained_after),
            CursorParam::After(n) if n > head.last_seq => Err(CursorError::Bad),
            CursorParam::After(n) if n < head.retained_after => Err(CursorError::Expired),
            CursorParam::After(n) => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: InboxHead = InboxHead {
        last_seq: 50,
        retained_after: 10,
    };

    #[test]
    fn cursors_resolve_against_the_inbox() {
        assert_eq!(CursorParam::parse(None).unwrap().resolve(HEAD), Ok(50));
        assert_eq!(CursorParam::parse(Some("")).unwrap().resolve(HEAD), Ok(50));
        assert_eq!(CursorParam::parse(Some("0")).unwrap().resolve(HEAD), Ok(10));
        assert_eq!(
            CursorParam::parse(Some("10")).unwrap().resolve(HEAD),
            Ok(10)
        );
        assert_eq!(
            CursorParam::parse(Some("42")).unwrap().resolve(HEAD),
            Ok(42)
        );
        assert_eq!(
            CursorParam::parse(Some("50")).unwrap().resolve(HEAD),
            Ok(50)
        );
        assert_eq!(
            CursorParam::parse(Some("51")).unwrap().resolve(HEAD),
            Err(CursorError::Bad)
        );
        assert_eq!(
            CursorParam::parse(Some("9")).unwrap().resolve(HEAD),
            Err(CursorError::Expired)
        );
        for bad in ["-1", "abc", "1.5", "99999999999999999999"] {
            assert_eq!(
                CursorParam::parse(Some(bad)),
                Err(CursorError::Bad),
                "{bad}"
            );
        }
    }
}
