package socketcluster

// OwnsDescriptor reports whether s's connection keeps only its socket's
// descriptor (Options.OwnDescriptors took it).
func OwnsDescriptor(s *Socket) bool { return s.conn.OwnsDescriptor() }
