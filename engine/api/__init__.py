"""How front ends reach the engine from outside its process: the command inbox that carries commands from other
shells and scripts through the store (``cockpit halt`` ...). The read model they are answered from is
``engine.core.readmodel``; the service API will serve both."""
