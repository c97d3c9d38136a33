"""SQL lives here: one module per table family. Functions take a Connection and plain values."""
