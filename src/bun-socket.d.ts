// Bun 1.4 sockets have pause()/resume() at run time (they stop and restart reading, so TCP
// pushes back on the peer) but bun-types does not declare them yet.
declare module "bun" {
  interface Socket<Data = undefined> {
    pause(): void;
    resume(): void;
  }
}

export {};
