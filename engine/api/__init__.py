"""How front ends reach the engine: the command inbox that carries commands from other shells, and the read
model. Front ends (the TUI, the CLI) read typed views and send commands here, never the engine's attributes."""
