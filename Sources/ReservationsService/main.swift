print("ReservationsService")
