use flowodm::Avro;

#[derive(Avro)]
enum Event {
    Started,
    Stopped,
    Moved { x: i32 },
    Pair(i32, i32),
}

fn main() {}
