use std::fmt;

/// The outcome codes of an RPC, numbered as in gRPC so a gRPC transport maps them one to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Code {
    /// The call succeeded.
    Ok = 0,
    /// The call was cancelled, usually by the caller.
    Cancelled = 1,
    /// An error with no better code.
    Unknown = 2,
    /// The request was malformed, whatever the system state.
    InvalidArgument = 3,
    /// The deadline passed before the call finished.
    DeadlineExceeded = 4,
    /// Something the request names does not exist.
    NotFound = 5,
    /// Something the request would create exists already.
    AlreadyExists = 6,
    /// The caller may not do this.
    PermissionDenied = 7,
    /// A quota or limit ran out (including frame size limits).
    ResourceExhausted = 8,
    /// The system is not in a state that allows the call.
    FailedPrecondition = 9,
    /// The call was aborted, typically by a concurrency conflict.
    Aborted = 10,
    /// A value was past the valid range.
    OutOfRange = 11,
    /// The method or service is not implemented here.
    Unimplemented = 12,
    /// An invariant broke on the server (including a handler panic).
    Internal = 13,
    /// The service cannot be reached now; retrying may help.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The caller did not prove who it is.
    Unauthenticated = 16,
}

impl Code {
    /// The code with this number; numbers outside gRPC's range become `Unknown`.
    pub fn from_u32(n: u32) -> Code {
        use Code::*;
        const ALL: [Code; 17] = [
            Ok,
            Cancelled,
            Unknown,
            InvalidArgument,
            DeadlineExceeded,
            NotFound,
            AlreadyExists,
            PermissionDenied,
            ResourceExhausted,
            FailedPrecondition,
            Aborted,
            OutOfRange,
            Unimplemented,
            Internal,
            Unavailable,
            DataLoss,
            Unauthenticated,
        ];
        ALL.get(n as usize).copied().unwrap_or(Unknown)
    }

    /// The gRPC name of the code, such as `DEADLINE_EXCEEDED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an RPC failed: a code, a message for people, and optional details for programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: Code,
    message: String,
    /// Encoded details (by convention a `google.rpc.Status`), carried as gRPC's
    /// `grpc-status-details-bin`.
    details: bytes::Bytes,
}

macro_rules! constructors {
    ($($name:ident => $code:ident),* $(,)?) => {
        $(
            #[doc = concat!("A status with code `", stringify!($code), "`.")]
            pub fn $name(message: impl Into<String>) -> Status {
                Status::new(Code::$code, message)
            }
        )*
    };
}

impl Status {
    /// A status with any code.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            details: bytes::Bytes::new(),
        }
    }

    /// A status with encoded details for programs, by convention a `google.rpc.Status`
    /// message (as gRPC's richer error model) that repeats the code and message and adds
    /// typed details. Both transports carry them to the client.
    pub fn with_details(
        code: Code,
        message: impl Into<String>,
        details: impl Into<bytes::Bytes>,
    ) -> Status {
        Status {
            code,
            message: message.into(),
            details: details.into(),
        }
    }

    constructors! {
        cancelled => Cancelled,
        unknown => Unknown,
        invalid_argument => InvalidArgument,
        deadline_exceeded => DeadlineExceeded,
        not_found => NotFound,
        already_exists => AlreadyExists,
        permission_denied => PermissionDenied,
        resource_exhausted => ResourceExhausted,
        failed_precondition => FailedPrecondition,
        aborted => Aborted,
        out_of_range => OutOfRange,
        unimplemented => Unimplemented,
        internal => Internal,
        unavailable => Unavailable,
        data_loss => DataLoss,
        unauthenticated => Unauthenticated,
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The encoded details; empty when there are none.
    pub fn details(&self) -> &bytes::Bytes {
        &self.details
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Status {}

impl From<crate::DecodeError> for Status {
    fn from(e: crate::DecodeError) -> Status {
        Status::invalid_argument(format!("cannot decode message: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_numbers() {
        for n in 0..=16 {
            assert_eq!(Code::from_u32(n) as u32, n);
        }
        assert_eq!(Code::from_u32(99), Code::Unknown);
        assert_eq!(Code::DeadlineExceeded as u32, 4);
        assert_eq!(Code::Unauthenticated as u32, 16);
    }

    #[test]
    fn display_names_the_code() {
        assert_eq!(
            Status::unimplemented("Method Add() not implemented").to_string(),
            "UNIMPLEMENTED: Method Add() not implemented"
        );
        assert_eq!(Status::new(Code::Ok, "").to_string(), "OK");
    }
}
