//! The one JSON error of the HTTP layer: `{"error": "..."}` with its status.

use super::*;

pub struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        use crate::core::lifecycle::ActionError::*;
        let status = match &e {
            CoreError::NotFound(_) => StatusCode::NOT_FOUND,
            CoreError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::Action(NotCleared(_) | AlreadyClosed(_)) => StatusCode::CONFLICT,
            CoreError::Action(_) | CoreError::Refused(_) => StatusCode::BAD_REQUEST,
        };
        ApiError(status, e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

pub(super) fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

impl From<crate::core::handle::AskError> for ApiError {
    fn from(e: crate::core::handle::AskError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}
