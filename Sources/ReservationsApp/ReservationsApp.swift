public enum ReservationsAppPlaceholder {}
