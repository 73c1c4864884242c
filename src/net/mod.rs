//! TCP and Unix stream sockets.
