// The distcache wire codec: constants, frames, message reassembly, the ADD payload. Pure.
export * from './constants';
export * from './frame';
export * from './message_reader';
export * from './add_payload';
