"""aep-emulator: an in-memory emulator of Adobe Experience Platform's asynchronous export path."""

__version__ = "0.1.0"
